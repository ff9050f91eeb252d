"""Word timestamps: the alignment's parts against plain references, openai-whisper's tidying rules, and on the
real jfk clip against faster-whisper's word timestamps on the same weights (those marked `real`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SPEECH, TOKENS, bundle, features, tiny_whisper
from specvoice.errors import SpecvoiceError
from specvoice.options import DecodingOptions
from specvoice.transcribe.words import add_word_timestamps, merge_punctuations
from specvoice.transcript import Segment
from specvoice.whisper.alignment import WordTiming, dtw, median_filter
from specvoice.whisper.decoder import WhisperDecoder


def reference_dtw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """openai-whisper's dtw_cpu, cell by cell."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    cost[0, 0] = 0
    trace = -np.ones((n + 1, m + 1))
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    trace[0, :], trace[:, 0] = 2, 1
    i, j, path = n, m, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        i, j = (i - 1, j - 1) if trace[i, j] == 0 else (i - 1, j) if trace[i, j] == 1 else (i, j - 1)
    return tuple(np.array(path[::-1]).T)


@pytest.mark.parametrize("seed", range(6))
def test_dtw_takes_openai_whispers_path(seed):
    """Random costs, and small integer costs full of ties (where the tie-breaking order shows)."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 12), rng.integers(1, 40)
    x = rng.normal(size=(n, m)) if seed % 2 else rng.integers(0, 3, size=(n, m)).astype(np.float64)
    for ours, theirs in zip(dtw(x), reference_dtw(x)):
        np.testing.assert_array_equal(ours, theirs)


def test_median_filter_reflects_at_the_edges():
    x = torch.randn(2, 3, 11, generator=torch.Generator().manual_seed(0))
    padded = np.concatenate([x.numpy()[..., 3:0:-1], x.numpy(), x.numpy()[..., -2:-5:-1]], axis=-1)
    expected = np.stack([np.median(padded[..., k: k + 7], axis=-1) for k in range(11)], axis=-1)
    np.testing.assert_allclose(median_filter(x, 7).numpy(), expected)
    assert torch.equal(median_filter(x[..., :3], 7), x[..., :3])  # too short to reflect: left as it is


def timings(*words: tuple[str, float, float]) -> list[WordTiming]:
    return [WordTiming(word, [i], start, end, 0.9) for i, (word, start, end) in enumerate(words)]


def test_punctuation_joins_its_word():
    alignment = timings((' "', 0, 0.1), ("Hello", 0.1, 0.5), (",", 0.5, 0.5), (" world", 0.6, 1.0), (".", 1.0, 1.1))
    merge_punctuations(alignment, DecodingOptions.prepend_punctuations, DecodingOptions.append_punctuations)
    assert [(t.word, t.tokens) for t in alignment] == [("", []), (' "Hello,', [0, 1, 2]), ("", []),
                                                       (" world.", [3, 4]), ("", [])]


def test_segments_take_their_words_times():
    segments = [Segment(10.0, 11.0, " One two.", [1, 2, 3]), Segment(11.0, 14.0, " Three", [4])]
    alignment = timings((" One", 0.2, 0.5), (" two", 0.5, 0.8), (".", 0.8, 0.8), (" Three", 1.1, 1.4))
    add_word_timestamps(segments, [3, 1], alignment, 10.0, 0.0, DecodingOptions.prepend_punctuations,
                        DecodingOptions.append_punctuations)
    assert [(w.word, w.start, w.end) for w in segments[0].words] == [(" One", 10.2, 10.5), (" two.", 10.5, 10.8)]
    assert (segments[0].start, segments[0].end) == (10.2, 10.8)
    # the word ends 3 s before the segment's timestamp: the segment ends with the word
    assert (segments[1].start, segments[1].end) == (11.1, 11.4)


def test_a_word_far_past_its_segment_is_cut_back():
    segments = [Segment(0.0, 1.0, " a b", [1, 2])]
    add_word_timestamps(segments, [2], timings((" a", 0.0, 0.4), (" b", 0.4, 2.5)), 0.0, 0.0, "", "")
    assert segments[0].end == 1.0  # the segment keeps its end; the word ends a median word length after its start
    assert segments[0].words[-1].end == pytest.approx(0.4 + 0.7)  # median of 0.4 and 2.1 s, capped at 0.7


def test_word_timestamps_need_timestamps():
    with pytest.raises(SpecvoiceError, match="--no-timestamps"):
        DecodingOptions(word_timestamps=True, timestamps=False)


def test_default_alignment_heads_are_the_last_half_of_the_layers():
    assert bundle(tiny_whisper(0)).timing_heads() == ((1, 0), (1, 1), (1, 2), (1, 3))


def test_cross_attention_scores_are_the_models_own(one_thread):
    """The teacher-forced pass sees what transformers' eager attention sees, and keeps no queries after it."""
    model = tiny_whisper(0)
    decoder = WhisperDecoder(bundle(model))
    audio = features(1)
    decoder.encode(audio)
    tokens = [TOKENS.sot, 5, 9, 30, 7, TOKENS.eot]
    heads = [(0, 1), (1, 0), (1, 3)]
    logits, scores = decoder.cross_attention_scores(tokens, heads)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model(input_features=audio, decoder_input_ids=torch.tensor([tokens]), output_attentions=True)
    torch.testing.assert_close(logits, out.logits[0], rtol=1e-4, atol=1e-4)
    expected = torch.stack([out.cross_attentions[layer][0, head] for layer, head in heads])
    torch.testing.assert_close(scores.softmax(dim=-1), expected, rtol=1e-4, atol=1e-5)
    assert decoder._cross_queries is None


# The real weights


@pytest.fixture(scope="module")
def jfk():
    from specvoice.audio import load_audio

    return load_audio(SPEECH / "whisper_jfk.wav")


@pytest.fixture(scope="module")
def jfk_words(int8_base, jfk):
    """base at int8 as faster-whisper runs it: int8 linears, float32 attention."""
    from specvoice.transcribe import Transcriber
    from specvoice.whisper import encoder

    options = DecodingOptions("ar", language="en", word_timestamps=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "native_bfloat16", lambda: False)
        return Transcriber(int8_base, None, options).transcribe(jfk)


@pytest.mark.real
def test_jfk_words_are_timed_in_order_and_spell_their_segments(jfk_words, jfk):
    words = [w for s in jfk_words.segments for w in s.words]
    assert len(words) == 22
    assert all(0 <= w.start <= w.end <= len(jfk) / 16000 for w in words)
    assert all(a.start <= b.start and a.end <= b.end for a, b in zip(words, words[1:]))
    assert all("".join(w.word for w in s.words) == s.text for s in jfk_words.segments)
    assert all(s.start == s.words[0].start and s.end == s.words[-1].end for s in jfk_words.segments)


@pytest.mark.real
def test_jfk_words_agree_with_faster_whisper(int8_base, jfk):
    """Word timing itself, on the same text: faster-whisper's own transcript of the clip, segment by segment, timed
    by specvoice's alignment and openai-whisper's rules, against faster-whisper's times. Each tool's int8 can spell
    the clip differently on some CPUs ("Americans, ask": a comma more on one Intel Xeon), and a comma moves the
    boundary rules by ~0.6 s: that is a difference of texts, which this leaves out."""
    from specvoice.bench.words import faster_whisper_model, paired_differences
    from specvoice.models import ctranslate2_folder
    from specvoice.whisper import encoder
    from specvoice.whisper.alignment import find_alignment
    from specvoice.whisper.features import LogMel

    model = faster_whisper_model(ctranslate2_folder("base"), 2)
    spoken, _ = model.transcribe(jfk, language="en", beam_size=1, temperature=0.0, word_timestamps=True,
                                 vad_filter=False)
    spoken = list(spoken)
    theirs = [w for s in spoken for w in s.words]
    tokenizer = int8_base.tokenizer
    segments = [Segment(s.start, s.end, s.text, tokenizer.encode(s.text)) for s in spoken]
    features = LogMel(jfk)
    decoder = WhisperDecoder(int8_base)
    with pytest.MonkeyPatch.context() as patch:  # float32 encoder attention, as faster-whisper's
        patch.setattr(encoder, "native_bfloat16", lambda: False)
        decoder.encode(features.window(0, int8_base.model.config.num_mel_bins))
    alignment = find_alignment(int8_base, decoder, [t for s in segments for t in s.tokens], features.frames, "en",
                               "transcribe")
    defaults = DecodingOptions()
    add_word_timestamps(segments, [len(s.tokens) for s in segments], alignment, 0.0, 0.0,
                        defaults.prepend_punctuations, defaults.append_punctuations)
    ours = [w for s in segments for w in s.words]
    assert [w.word for w in ours] == [w.word for w in theirs]
    starts, ends = paired_differences(ours, theirs)
    assert len(starts) == len(theirs)
    assert np.median(starts) < 0.1 and np.median(ends) < 0.1
    assert max(starts) < 0.3


@pytest.mark.real
@pytest.mark.parametrize("method", ["ar", "specasr"])
def test_word_timestamps_keep_the_tokens(method, real_models, jfk):
    from specvoice.transcribe import Transcriber

    draft = real_models["tiny.en"] if method != "ar" else None
    plain, worded = (Transcriber(real_models["base"], draft, DecodingOptions(
        method, language="en", timestamps=True, word_timestamps=words)).transcribe(jfk) for words in (False, True))
    assert worded.tokens == plain.tokens
    assert [s.text for s in worded.segments] == [s.text for s in plain.segments]
    assert all(s.words for s in worded.segments) and not any(s.words for s in plain.segments)


@pytest.mark.real
def test_long_audio_words_run_on_across_windows(real_models, manifest):
    """Past 30 s the next window starts at the last word's end: words stay in order across windows."""
    from specvoice.audio import load_audio
    from specvoice.transcribe import Transcriber

    row = next(r for r in manifest if 30 < r["seconds"] < 60)
    audio = load_audio(SPEECH / row["audio"])
    result = Transcriber(real_models["base"], None, DecodingOptions("ar", language="en", word_timestamps=True)) \
        .transcribe(audio)
    assert result.windows >= 2
    words = [w for s in result.segments for w in s.words]
    assert all(0 <= w.start <= w.end <= row["seconds"] for w in words)
    assert all(a.end <= b.start + 0.02 for a, b in zip(words, words[1:]))
    assert all("".join(w.word for w in s.words) == s.text for s in result.segments)


@pytest.mark.real
def test_a_conversion_without_alignment_heads_gets_them_and_a_current_one_loads_without_its_package(tmp_path,
                                                                                                    monkeypatch):
    import json
    import shutil

    from specvoice.models import registry
    from specvoice.models.ctranslate2 import record_is_stale, refresh_record
    from specvoice.models.resolve import _builtin_folder

    converted = _builtin_folder("base")
    current = json.loads((converted / "specvoice.json").read_text())
    older = tmp_path / "older"
    older.mkdir()
    shutil.copy(converted / "specvoice.json", older / "specvoice.json")
    (older / "specvoice.json").write_text(json.dumps({k: v for k, v in current.items() if k != "alignment_heads"}))
    assert record_is_stale(older) and not record_is_stale(converted)
    refresh_record(registry.files_dir("base"), older)
    assert json.loads((older / "specvoice.json").read_text()) == current and current["alignment_heads"]

    def missing(name):
        raise AssertionError("an up-to-date conversion must not need the CTranslate2 package")

    monkeypatch.setattr(registry, "files_dir", missing)
    assert _builtin_folder("base") == converted
