// `arle bench serve`: a load generator for any OpenAI-compatible server (arle, vLLM, llama.cpp),
// reporting TTFT, TPOT, ITL and throughput with vLLM's benchmark_serving definitions.
#pragma once

namespace CLI {
class App;
}

namespace arle::app {

// Adds the `serve` subcommand under `bench` (the `bench` command's own callback must skip its
// local benchmark when this subcommand ran). Its callback stores the exit code in `exit_code`.
void RegisterBenchServeCommand(CLI::App& bench, int& exit_code);

}  // namespace arle::app
