import Foundation

/// Load from wrk (Debian's package), with a Lua script that makes every request body unique.
struct Wrk {
    enum Kind {
        case single
        case batch(Int)
    }

    struct Result {
        var requestsPerSecond: Double
        var p50: Double
        var p99: Double
        var errors: Int
    }

    let url: String
    let apiKey: String
    let seconds: Int

    func run(kind: Kind, connections: Int) async throws -> Result {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("lead-bench-\(UUID().uuidString).lua")
        try lua(kind).write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let path: String
        switch kind {
        case .single: path = "/v1/interactions"
        case .batch: path = "/v1/interactions/batch"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script.path, url + path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("wrk failed: \(output)") }
        return try parse(output)
    }

    func parse(_ output: String) throws -> Result {
        var result = Result(requestsPerSecond: 0, p50: 0, p99: 0, errors: 0)
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("Requests/sec:"), let value = parts.last.flatMap({ Double($0) }) {
                result.requestsPerSecond = value
            } else if line.hasPrefix("50%"), let value = parts.last { result.p50 = milliseconds(String(value)) }
            else if line.hasPrefix("99%"), let value = parts.last { result.p99 = milliseconds(String(value)) }
            else if line.hasPrefix("Non-2xx or 3xx responses:"), let value = parts.last.flatMap({ Int($0) }) {
                result.errors += value
            } else if line.hasPrefix("Socket errors:") {
                result.errors += line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +)
            }
        }
        guard result.requestsPerSecond > 0 else { throw BenchError("cannot read wrk output: \(output)") }
        return result
    }

    private func milliseconds(_ text: String) -> Double {
        let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return rounded(value * factor) }
        }
        return 0
    }

    private func lua(_ kind: Kind) -> String {
        let event = #"{\"session_id\":\"bench-%d-%d\",\"type\":\"%s\",\"source_page\":\"/bench\",\"data\":{\"procedure\":\"Botox\",\"n\":%d}}"#
        let common = """
            local counter = 0
            local thread_id = math.random(1, 1000000000)
            local types = {"page_view", "search", "face_analysis", "cost_calculator", "ai_recommendation"}
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/json"
            wrk.headers["Authorization"] = "Bearer \(apiKey)"
            local function event()
              counter = counter + 1
              return string.format("\(event)", thread_id, counter % 5000, types[(counter % 5) + 1], counter)
            end

            """
        switch kind {
        case .single:
            return common + """
                request = function()
                  return wrk.format(nil, nil, nil, event())
                end
                """
        case .batch(let size):
            return common + """
                request = function()
                  local events = {}
                  for i = 1, \(size) do events[i] = event() end
                  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(events, ",") .. ']}')
                end
                """
        }
    }
}
