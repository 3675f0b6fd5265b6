"""Getting guitar audio into the pedal: live input (PyAudio), WAV/FLAC takes and the demo take.

Reading a whole take: :func:`read_audio` / :func:`iter_audio_blocks`. Streaming any source to the
analysis thread through a ring buffer: :func:`open_source` (see :mod:`device.audio.source`).
"""

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
from device.audio.file_source import DemoSource, FileSource
from device.audio.pyaudio_source import (
    PREFERRED_RATES,
    InputDevice,
    LiveChannelChooser,
    PaFactory,
    PyAudioSource,
    list_input_devices,
)
from device.audio.ring_buffer import RingBuffer, RingRead
from device.audio.source import (
    AudioBlock,
    AudioSource,
    RingSource,
    SourceKind,
    SourceState,
    SourceStatus,
    open_source,
)

__all__ = [
    "GUITAR_DOMINANCE_DB",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "PREFERRED_RATES",
    "AudioBlock",
    "AudioBlocks",
    "AudioClip",
    "AudioSource",
    "ChannelSpec",
    "DemoSource",
    "FileSource",
    "InputDevice",
    "LiveChannelChooser",
    "PaFactory",
    "PyAudioSource",
    "RingBuffer",
    "RingRead",
    "RingSource",
    "SourceKind",
    "SourceState",
    "SourceStatus",
    "choose_channel",
    "iter_audio_blocks",
    "list_input_devices",
    "open_source",
    "read_audio",
]
