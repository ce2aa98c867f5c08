# libFuzzer target for the chat-template Jinja engine (seed corpus: fuzz/corpus/jinja/).
arle_fuzzer(fuzz_jinja fuzz_jinja.cc arle_tokenizer)
