# safetensors reader fuzzer (see fuzz/README.md).
arle_fuzzer(fuzz_safetensors fuzz_safetensors.cc arle_io)
