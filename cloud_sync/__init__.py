"""FretCoach Pedal: cloud_sync."""
