import pytest

from device.analysis import ScaleKind, parse_scale
from device.errors import AnalysisError, FretCoachError, UnknownScaleError


@pytest.mark.parametrize(
    ("text", "name", "pcs"),
    [
        ("A minor pentatonic", "A minor pentatonic", {9, 0, 2, 4, 7}),
        ("D Minor", "D natural minor", {2, 4, 5, 7, 9, 10, 0}),
        ("Bb major", "Bb major", {10, 0, 2, 3, 5, 7, 9}),
        ("f# minor", "F# natural minor", {6, 8, 9, 11, 1, 2, 4}),
        ("  e   MAJOR   pentatonic ", "E major pentatonic", {4, 6, 8, 11, 1}),
        ("C", "C major", {0, 2, 4, 5, 7, 9, 11}),
        ("Am", "A natural minor", {9, 11, 0, 2, 4, 5, 7}),
        ("G maj pent", "G major pentatonic", {7, 9, 11, 2, 4}),
        ("B flat major", "Bb major", {10, 0, 2, 3, 5, 7, 9}),
        ("C♯ minor pentatonic", "C# minor pentatonic", {1, 4, 6, 8, 11}),
        ("a-natural-minor", "A natural minor", {9, 11, 0, 2, 4, 5, 7}),
    ],
)
def test_scale_names_parse_forgivingly(text: str, name: str, pcs: set[int]) -> None:
    scale = parse_scale(text)
    assert scale.name == name
    assert scale.pitch_classes == frozenset(pcs)


def test_all_twelve_keys_of_all_four_kinds_parse() -> None:
    tonics = ["C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#", "Ab", "A", "A#", "Bb", "B"]
    for tonic in tonics:
        for kind in ScaleKind:
            scale = parse_scale(f"{tonic} {kind.value}")
            assert scale.kind is kind
            assert len(scale.pitch_classes) == (5 if "pentatonic" in kind.value else 7)


def test_membership_is_by_pitch_class_in_every_octave() -> None:
    a_minor_pent = parse_scale("A minor pentatonic")
    assert all(a_minor_pent.contains(m) for m in (45, 57, 69, 48, 60, 50, 52, 55))
    assert not any(a_minor_pent.contains(m) for m in (46, 47, 49, 53, 54, 56))


def test_scale_type_is_natural_or_pentatonic() -> None:
    assert parse_scale("A minor pentatonic").scale_type == "pentatonic"
    assert parse_scale("D minor").scale_type == "natural"


@pytest.mark.parametrize("text", ["H major", "A dorian", "", "minor", "A minor blues", "A#b major"])
def test_unknown_scale_is_one_clear_error_listing_what_is_accepted(text: str) -> None:
    with pytest.raises(UnknownScaleError) as info:
        parse_scale(text)
    message = str(info.value)
    assert "\n" not in message
    assert "minor pentatonic" in message and "Bb major" in message
    assert isinstance(info.value, AnalysisError | FretCoachError)
    assert isinstance(info.value, ValueError)
