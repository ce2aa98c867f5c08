# OpenAI request body fuzzer (seed corpus: fuzz/corpus/openai_request/).
arle_fuzzer(fuzz_openai_request fuzz_openai_request.cc arle_server nlohmann_json::nlohmann_json)
