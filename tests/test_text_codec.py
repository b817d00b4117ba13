from gan_demo.text_codec import TextCodec, detokenize, normalize


def test_normalisation_folds_expands_and_separates():
    assert normalize("\u201cIt\u2019s fine,\u201d she said \u2014 didn\u2019t she?") == \
        '" it is fine , " she said - did not she ?'
    assert normalize("We\u2060'll go; I'm here.") == "we will go ; i am here ."
    assert normalize("caf\u00e9   na\u00efve") == "cafe naive"


def test_encode_decode():
    c = TextCodec(max_len=32)
    ids = c.encode("Hello, world!")
    assert len(ids) == 32 and ids[0] == c.sos and c.eos in ids
    assert c.decode(ids) == "Hello, world!"
    assert c.decode_tokens(ids) == "<SOS>hello , world !<EOS>"
    assert c.encode("x" * 40) is None and c.encode("   ") is None


def test_decode_stops_at_eos_and_drops_markers():
    c = TextCodec()
    ids = [c.sos, c.index["h"], c.index["i"], c.sos, c.eos, c.index["z"]]
    assert c.decode(ids) == "Hi"


def test_detokenize():
    assert detokenize('he said " go away " ( now ) .') == 'He said "go away" (now).'
