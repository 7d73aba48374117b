import AMQP
import Foundation
import LeadService
import Testing

/// lead-ingest against its published description and against garbage.
@Suite struct IngestConformanceTests {
    /// docs/openapi.yaml, checked by Tests/contract/openapi_check.py against the running service and one
    /// whose broker is unreachable: every documented status reached, every response matching its schema.
    @Test func openAPIDescriptionMatchesTheRunningService() async throws {
        let stack = try await SharedStack.shared.start()
        let port = TestEnvironment.freePort()
        let deadBroker = TestEnvironment.freePort()
        let brokerless = try await ServiceProcess.start(
            "lead-ingest",
            environment: [
                "INGEST_PORT": "\(port)", "INGEST_METRICS_PORT": "\(TestEnvironment.freePort())",
                "AMQP_URL": "amqp://guest:guest@127.0.0.1:\(deadBroker)/%2F",
            ],
            readyPort: port,
            readyPath: "/healthz",
            label: "ingest-brokerless"
        )
        let (status, output) = try await PythonScript.run(
            "Tests/contract/openapi_check.py",
            [
                "--spec", TestEnvironment.repositoryRoot + "/docs/openapi.yaml", "--ingest", stack.ingest,
                "--ingest-down", "http://127.0.0.1:\(port)",
            ],
            label: "openapi-check"
        )
        #expect(status == 0, "openapi check: \(output.suffix(2000))")
        try await brokerless.terminate()
    }

    /// Random and mutated bodies: never a 5xx, always the error shape, and exactly the accepted events (none
    /// of the rejected ones) reach the broker.
    @Test func fuzzedBodiesGetClearErrorsAndOnlyAcceptedEventsArePublished() async throws {
        let stack = try await SharedStack.shared.start()
        let url = stack.ingest + "/v1/interactions"
        let run = "fuzz-\(UUID().uuidString.prefix(8).lowercased())"
        let tap = try await EventTap(routingKeys: ["interaction.#"], exchange: LeadTopology.interactionsExchange)
        let seed = UInt64.random(in: 1...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        var accepted = Set<String>()
        var statuses: [Int: Int] = [:]
        for index in 0..<1500 {
            let body = FuzzBody.make(run: run, index: index, using: &generator)
            let response = try await HTTP.post(
                url, body: body, headers: [("Content-Type", "application/json"), ("Authorization", "Bearer dev-ingest-key")]
            )
            statuses[response.status, default: 0] += 1
            if response.status == 202 {
                accepted.insert("\(run)-\(index)")
                continue
            }
            let error = response.json?["error"] as? [String: Any]
            let shaped = [400, 413, 422].contains(response.status) && error?["code"] is String && error?["message"] is String
            #expect(shaped, "seed \(seed), body \(index): \(response.status) \(response.text.prefix(200))")
            if !shaped { break }
        }
        #expect(statuses.keys.allSatisfy { $0 < 500 }, "seed \(seed): \(statuses)")
        #expect(accepted.count > 50 && accepted.count < 1450, "seed \(seed): the fuzzer should produce both kinds: \(statuses)")
        // Every 202 was confirmed by the broker before it was sent, so all published events are in the tap's
        // queue already; wait for the tap to read as many as were accepted, then compare the sets.
        let published = try await eventually("\(accepted.count) fuzzed events published", timeout: .seconds(30)) { () -> Set<String>? in
            let sessions = Set(
                tap.messages.compactMap { delivery -> String? in
                    let object = (try? JSONSerialization.jsonObject(with: delivery.body)) as? [String: Any]
                    return (object?["session_id"] as? String).flatMap { $0.hasPrefix(run) ? $0 : nil }
                }
            )
            return sessions.count >= accepted.count ? sessions : nil
        }
        #expect(published == accepted, "seed \(seed)")
        await tap.close()
    }
}

/// Bodies that are valid, nearly valid, or nonsense, from a seed. Every body that could be accepted carries
/// the session id `<run>-<index>`, so the published messages can be matched to the requests.
enum FuzzBody {
    static let types = [
        "ai_recommendation", "face_analysis", "cost_calculator", "appointment_booking", "package_inquiry", "consultation",
        "search", "page_view", "registration", "community_engagement", "prompt_dismissed",
    ]

    static func make(run: String, index: Int, using generator: inout SeededGenerator) -> Data {
        let session = "\(run)-\(index)"
        switch Int.random(in: 0..<10, using: &generator) {
        case 0:  // random bytes
            return Data((0..<Int.random(in: 0..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        case 1:  // truncated JSON
            let text = #"{"session_id": "\#(session)", "type": "page_view", "data": {"a": [1, 2, {"b": "c"}]}}"#
            return Data(text.utf8.prefix(Int.random(in: 0..<text.utf8.count, using: &generator)))
        case 2:  // JSON that is not an object
            return Data(["[]", "1", "\"x\"", "null", "true", "[{\"session_id\": \"\(session)\"}]"].randomElement(using: &generator)!.utf8)
        default:  // an event with some fields mutated
            var event: [String: Any] = ["session_id": session, "type": types.randomElement(using: &generator)!]
            let mutations = Int.random(in: 0...2, using: &generator)
            for _ in 0..<mutations {
                let values: [Any] = [
                    NSNull(), 42, -1, 1.5, true, "", String(repeating: "x", count: 300), [1, 2], ["k": "v"], "not-a-uuid",
                    "2099-01-01T00:00:00Z", "yesterday", "asha@", "+91 98765 43210", "12345", "\u{0}", "purchase",
                ]
                let field = ["type", "event_id", "user_id", "source_page", "occurred_at", "contact", "consent", "data", "contact.email", "contact.phone", "consent.marketing", "extra"]
                    .randomElement(using: &generator)!
                let value = values.randomElement(using: &generator)!
                if field.contains(".") {
                    let parts = field.split(separator: ".").map(String.init)
                    event[parts[0]] = [parts[1]: value]
                } else {
                    event[field] = value
                }
            }
            return (try? JSONSerialization.data(withJSONObject: event)) ?? Data()
        }
    }
}
