import ArgumentParser
import Foundation
import LeadService
import LeadStore
import Logging

/// `make bench`: the pipeline's throughput, latency and memory, each next to the broker's and the
/// database's own ceilings measured in the same run. One JSON object per line on stdout and in `--out`.
@main
struct LeadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lead-bench", abstract: "Benchmark the lead pipeline.")

    @Option(help: "Where the service binaries are (a release build).") var binDir: String
    @Option(help: "JSON lines output file.") var out = "bench/results/latest.jsonl"
    @Option(help: "Seconds per wrk run.") var seconds = 10
    @Option(help: "Events pre-filled for the scorer runs.") var scorerEvents = 50_000
    @Option(help: "Messages for the 3-node cluster's broker ceiling (the single node's runs for --seconds).") var brokerMessages = 50_000
    @Option(help: "Rows for the database ceiling.") var databaseRows = 100_000
    @Option(help: "Events per second for the end-to-end latency run.") var e2eRate = 200
    @Option(help: "Where logs of the started services go.") var logDir = ".run/bench/logs"
    @Option(help: "Stack name for the 3-node RabbitMQ cluster phase (started with scripts/servers.sh); empty skips it.")
    var clusterStack = ""
    @Option(help: "First AMQP port of the cluster's three nodes.") var clusterBasePort = 5686

    @Flag(help: "Only the in-process micro-benchmarks (no servers needed).") var microOnly = false
    @Flag(help: "Only the ceilings and the scorer runs (for working on the scorer).") var scorerOnly = false
    @Flag(help: "Only the ceilings and the end-to-end latency run (with --e2e-rate: latency against load).")
    var e2eOnly = false
    @Flag(help: "Only the broker ceiling and the ingest runs (for working on lead-ingest).") var ingestOnly = false

    func validate() throws {
        guard [microOnly, scorerOnly, e2eOnly, ingestOnly].filter({ $0 }).count <= 1 else {
            throw ValidationError("choose at most one of --micro-only, --scorer-only, --e2e-only, --ingest-only")
        }
    }

    func run() async throws {
        if microOnly {
            for result in try MicroBench.run() {
                print("\(result.name): p50 \(Int(result.p50)) ns, p99 \(Int(result.p99)) ns per event")
            }
            return
        }
        ChildProcesses.installSignalHandlers()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let configuration = try ServiceConfiguration()
        let report = try Report(path: out)
        let bench = Bench(configuration: configuration, binDir: binDir, logDir: logDir, report: report)
        try await bench.run(options: self)
    }
}
