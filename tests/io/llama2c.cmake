# llama2.c importer tests (included from tests/io/CMakeLists.txt). The tok512 encode check needs
# the tokenizer library; it is compiled in when that target exists.
set(_llama2c_test_deps arle_io nlohmann_json::nlohmann_json)
if(TARGET arle_tokenizer)
  list(APPEND _llama2c_test_deps arle_tokenizer)
endif()
arle_test(arle_llama2c_tests
  SOURCES llama2c_test.cc
  DEPS ${_llama2c_test_deps})
if(TARGET arle_tokenizer)
  target_compile_definitions(arle_llama2c_tests PRIVATE ARLE_TEST_HAVE_TOKENIZER=1)
endif()
