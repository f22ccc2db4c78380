"""Tokenizer files (genaannot.io.tokenizers): reading, writing, and the shortcuts in tokenize."""

from __future__ import annotations

import json
import pickle

import pytest
from tinymodels import make_tokenizer

from genaannot.io.tokenizers import (
    load_tokenizer,
    read_bpe_tokenizer,
    read_tokenizer_config,
    write_tokenizer_files,
    write_tokenizer_json,
)
from genaannot.tokenize import HYENA_CHAR_VOCAB, BPETokenizer, CharTokenizer, TokenizerError

SEQ = "ACGTTGCANNNNNNNNNNNNACGTRYK"


@pytest.fixture(scope="module")
def tok_json(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tiny"))


def test_from_json_needs_no_file(tok_json):
    tok = BPETokenizer.from_json(tok_json.read_text(), name="mem")
    assert tok.name == "mem" and tok.path is None
    ref = read_bpe_tokenizer(tok_json)
    assert ref.name == tok_json.parent.name and ref.path == tok_json
    assert tok.encode(SEQ).ids.tolist() == ref.encode(SEQ).ids.tolist()
    assert tok.encode(SEQ).spans.tolist() == ref.encode(SEQ).spans.tolist()
    assert BPETokenizer(tok_json.read_text()).encode(SEQ).ids.tolist() == ref.encode(SEQ).ids.tolist()
    with pytest.raises(TokenizerError, match="no \\[CLS\\]/\\[SEP\\]"):
        BPETokenizer.from_json('{"version": "1.0", "model": {"type": "BPE", "vocab": {"A": 0}, "merges": []}}')


def test_pickles_for_worker_processes(tok_json):
    tok = read_bpe_tokenizer(tok_json)
    again = pickle.loads(pickle.dumps(tok))
    assert again.encode(SEQ).ids.tolist() == tok.encode(SEQ).ids.tolist() and again.name == tok.name


def test_files_are_what_the_tokenizers_library_writes(tok_json, tmp_path):
    tok = read_bpe_tokenizer(tok_json)
    write_tokenizer_files(tmp_path / "a", tok)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    tok._tok.save(str(tmp_path / "ref.json"))  # the Rust writer
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "ref.json").read_bytes()
    assert json.loads((tmp_path / "a" / "tokenizer_config.json").read_text()) == {
        "tokenizer_class": "PreTrainedTokenizerFast"}
    assert json.loads((tmp_path / "a" / "special_tokens_map.json").read_text())["cls_token"] == "[CLS]"
    write_tokenizer_files(tmp_path / "b", read_bpe_tokenizer(tmp_path / "a" / "tokenizer.json"))  # round trip
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_char_tokenizer_files(tmp_path):
    write_tokenizer_files(tmp_path, CharTokenizer())
    cfg = read_tokenizer_config(tmp_path)
    assert cfg["tokenizer_class"] == "CharTokenizer" and cfg["char_vocab"] == HYENA_CHAR_VOCAB
    assert json.loads((tmp_path / "special_tokens_map.json").read_text())["bos_token"] == "[BOS]"


def test_load_tokenizer(tok_json, tmp_path):
    assert load_tokenizer(tok_json.parent).name == tok_json.parent.name
    assert load_tokenizer(tok_json).vocab_size == read_bpe_tokenizer(tok_json).vocab_size
    with pytest.raises(TokenizerError, match="no tokenizer.json in") as err:
        load_tokenizer(tmp_path)
    # options that exist: scan/score/inspect have no --tokenizer (train has)
    assert "--model-option tokenizer=DIR (scan, score, models inspect)" in str(err.value)
    path = write_tokenizer_json(tmp_path / "new" / "tok", tok_json.read_text())
    assert path == tmp_path / "new" / "tok" / "tokenizer.json" and path.read_text() == tok_json.read_text()


def test_read_tokenizer_config(tmp_path):
    assert read_tokenizer_config(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text('{"a": 1}')
    assert read_tokenizer_config(tmp_path) == {"a": 1}
    (tmp_path / "tokenizer_config.json").write_text("{")
    with pytest.raises(TokenizerError, match="not valid JSON"):
        read_tokenizer_config(tmp_path)
