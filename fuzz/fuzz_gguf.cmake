# GGUF reader fuzzer (see fuzz/README.md).
arle_fuzzer(fuzz_gguf fuzz_gguf.cc arle_io)
