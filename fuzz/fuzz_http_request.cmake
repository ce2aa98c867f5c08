# HTTP/1.1 request parser and router fuzzer (seed corpus: fuzz/corpus/http_request/).
arle_fuzzer(fuzz_http_request fuzz_http_request.cc arle_server)
