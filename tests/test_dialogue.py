"""Dialogue files: plain text and JSON lines, errors with line numbers, examples, the chitchat builder."""

from __future__ import annotations

import json

import pytest

from charnn.errors import CharnnError
from charnn.text.dialogue import (
    detect_format,
    format_plain,
    make_examples,
    parse_jsonl,
    parse_plain,
    read_dialogues,
    split_conversations,
)


def test_plain_text_one_turn_per_line_and_blank_lines_between_conversations():
    text = "hi there\nhello!\n\n\nhow are you?\n  fine,   thanks  \n"
    assert parse_plain(text) == [["hi there", "hello!"], ["how are you?", "fine, thanks"]]


def test_speaker_prefixes_are_stripped_and_a_speakers_consecutive_lines_merge():
    text = "Alice: hi\nBob: hey\nBob: how are you?\nDr. Who: fine\n"
    assert parse_plain(text) == [["hi", "hey how are you?", "fine"]]


def test_a_colon_in_unprefixed_text_is_kept():
    text = "Note: this is one turn\nand this is another\nthird one\n"
    assert parse_plain(text) == [["Note: this is one turn", "and this is another", "third one"]]


def test_one_line_conversations_lose_their_prefix_when_the_file_uses_prefixes():
    text = "A: hi\nB: hello\n\nA: alone\n"
    assert parse_plain(text) == [["hi", "hello"], ["alone"]]


def test_a_line_without_speaker_in_a_named_conversation_is_reported_with_its_line_number():
    text = "A: hi\nB: hello\n\nA: one\nB: two\nwrapped continuation\nA: three\n"
    with pytest.raises(CharnnError, match=r"chat\.txt line 6: .*no speaker"):
        parse_plain(text, "chat.txt")


def test_an_empty_named_turn_is_reported_and_later_problems_are_counted():
    text = "A: hi\nB:\nA: ok\nB: \nA: bye\n"
    with pytest.raises(CharnnError, match=r"line 2: the turn of 'B' is empty \(1 more malformed line, the next at line 4\)"):
        parse_plain(text, "d.txt")


def test_json_lines_roles_merge_and_system_messages_are_skipped():
    lines = [
        {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                      {"role": "user", "content": "there"}, {"role": "assistant", "content": "hello\nyou"}]},
        {"messages": [{"role": "user", "content": "bye"}]},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n\n"
    assert parse_jsonl(text) == [["hi there", "hello you"], ["bye"]]


@pytest.mark.parametrize("line,problem", [
    ('{"messages": [', r"line 2: not valid JSON"),
    ('[1, 2]', r'line 2: expected an object with a "messages" list'),
    ('{"messages": [{"role": "user"}]}', r'line 2: message 1 is not an object with a "content" string'),
    ('{"messages": [{"role": 5, "content": "x"}]}', r'line 2: message 1 has a "role" that is not a string'),
])
def test_malformed_json_lines_are_reported_with_their_line_number(line, problem):
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(CharnnError, match=problem):
        parse_jsonl(good + "\n" + line + "\n" + good + "\n", "chat.jsonl")


def test_read_dialogues_picks_the_format_and_normalises_line_ends(tmp_path):
    jl = tmp_path / "c.jsonl"
    jl.write_text(json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}))
    assert read_dialogues(jl) == [["a", "b"]]
    txt = tmp_path / "c.txt"
    txt.write_bytes(b"A: one\r\nB: two\r\n\r\nA: three\r\nB: four\r\n")
    assert read_dialogues(txt) == [["one", "two"], ["three", "four"]]
    braces = tmp_path / "noext"
    braces.write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    assert detect_format(braces, braces.read_text()) == "jsonl"


def test_a_file_with_no_dialogue_is_a_clear_error(tmp_path):
    p = tmp_path / "blank.txt"
    p.write_text("\n  \n\n")
    with pytest.raises(CharnnError, match="holds no dialogue"):
        read_dialogues(p)


def test_examples_are_the_previous_k_turns_and_the_next_turn():
    examples = make_examples([["a", "b", "c", "d"]], context_turns=2)
    assert examples == [((), "a"), (("a",), "b"), (("a", "b"), "c"), (("b", "c"), "d")]


def test_split_holds_out_whole_conversations_from_the_end():
    convs = [[str(i)] for i in range(20)]
    train, val = split_conversations(convs, 0.1)
    assert val == [["18"], ["19"]] and len(train) == 18
    train, val = split_conversations(convs[:2], 0.01)
    assert len(train) == 1 and len(val) == 1


def test_plain_format_round_trips_with_and_without_speakers():
    convs = [["hi: there", "hello"], ["one"], ["x", "y", "z"]]
    assert parse_plain(format_plain(convs, ("A", "B"))) == convs
    assert parse_plain(format_plain([["a", "b"], ["c"]])) == [["a", "b"], ["c"]]


def test_chitchat_builder_merges_runs_of_one_sender_and_caches_its_files(monkeypatch):
    import chitchat_dataset

    from charnn.corpora import chitchat

    data = {
        "c1": {"messages": [
            [{"text": "Hello", "sender": "x"}, {"text": "how are  you?", "sender": "x"}],
            [{"text": "good", "sender": "y"}],
            [{"text": "same sender again", "sender": "y"}],
            [{"text": "  ", "sender": "x"}],
        ]},
        "c2": {"messages": [[{"text": "Name: not a speaker", "sender": "a"}], [{"text": "ok", "sender": "b"}]]},
    }
    monkeypatch.setattr(chitchat_dataset, "Dataset", lambda: data)
    expected = [["Hello how are you?", "good same sender again"], ["Name: not a speaker", "ok"]]
    assert chitchat.conversations() == expected
    path = chitchat.dialogue_file()
    assert read_dialogues(path) == expected
    assert path.read_text().startswith("A: Hello how are you?\nB: good")
    mtime = path.stat().st_mtime_ns
    assert chitchat.dialogue_file() == path and path.stat().st_mtime_ns == mtime
    flat = chitchat.flat_text_file()
    assert flat != path and read_dialogues(flat) == expected
    assert not list(path.parent.glob("*.tmp"))


def test_the_real_chitchat_package_has_its_seven_thousand_conversations():
    from charnn.corpora import chitchat

    convs = chitchat.conversations()
    assert len(convs) == 7168
    assert all(turns and all(t and "\n" not in t for t in turns) for turns in convs[:200])
