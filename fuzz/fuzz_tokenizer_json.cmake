# libFuzzer target for tokenizer.json parsing (seed corpus: fuzz/corpus/tokenizer_json/).
arle_fuzzer(fuzz_tokenizer_json fuzz_tokenizer_json.cc arle_tokenizer)
