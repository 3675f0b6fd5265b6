"""FretCoach Pedal: hardware."""
