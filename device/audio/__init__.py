"""Getting guitar audio into the pedal: takes read from WAV/FLAC files."""

from device.audio.file_reader import (
    GUITAR_DOMINANCE_DB,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    AudioBlocks,
    AudioClip,
    ChannelSpec,
    choose_channel,
    iter_audio_blocks,
    read_audio,
)

__all__ = [
    "GUITAR_DOMINANCE_DB",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioBlocks",
    "AudioClip",
    "ChannelSpec",
    "choose_channel",
    "iter_audio_blocks",
    "read_audio",
]
