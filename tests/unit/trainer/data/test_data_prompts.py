"""Where a response ends: the end-of-turn tokens the tokenizer has, and its EOS."""

from limr_trainer.data.prompts import end_of_turn_ids


class _Tok:
    def __init__(self, vocab, eos):
        self._vocab, self.eos_token_id = vocab, eos

    def get_vocab(self):
        return self._vocab


def test_both_end_tokens_and_eos_without_duplicates():
    assert end_of_turn_ids(_Tok({"<|im_end|>": 7, "<|endoftext|>": 3, "a": 1}, eos=3)) == (7, 3)
    assert end_of_turn_ids(_Tok({"</s>": 2}, eos=2)) == (2,)
