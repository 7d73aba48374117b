import Foundation
import NIOHTTP1
import PostgresNIO
import Testing

/// CONTRACT section 3 status codes against the running lead-ingest.
@Suite struct IngestContractTests {
    func url() async throws -> String { try await SharedStack.shared.start().ingest + "/v1/interactions" }

    @Test func acceptsAValidEventWith202AndItsId() async throws {
        let eventID = UUID().uuidString.lowercased()
        let response = try await HTTP.postJSON(try await url(), ["event_id": eventID, "session_id": "s-\(eventID)", "type": "page_view"])
        #expect(response.status == 202)
        #expect(response.json?["event_id"] as? String == eventID)
        #expect(response.json?["status"] as? String == "accepted")
    }

    /// `GET /metrics` counts requests by route, method and status (`RequestMetricsMiddleware`). Other tests post
    /// meanwhile, so the counts must grow by at least this test's requests.
    @Test func metricsCountRequestsByRouteAndStatus() async throws {
        let metricsURL = try await SharedStack.shared.start().ingest + "/metrics"
        func count(_ status: Int) async throws -> Double {
            let series = "hb_requests{http_route=\"/v1/interactions\",http_request_method=\"POST\",http_response_status_code=\"\(status)\"}"
            let text = try await HTTP.get(metricsURL).text
            let line = text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
            return line.flatMap { Double($0.dropFirst(series.count + 1)) } ?? 0
        }
        let (accepted, invalid) = (try await count(202), try await count(422))
        for _ in 0..<3 {
            #expect(try await HTTP.postJSON(try await url(), ["session_id": "s-metrics", "type": "page_view"]).status == 202)
        }
        #expect(try await HTTP.postJSON(try await url(), ["session_id": "s-metrics", "type": "no_such_type"]).status == 422)
        #expect(try await count(202) >= accepted + 3)
        #expect(try await count(422) >= invalid + 1)
        let text = try await HTTP.get(metricsURL).text
        #expect(text.contains("http_server_request_duration_bucket{"), "the latency histogram is exported")
    }

    @Test func missingOrWrongKeyIs401() async throws {
        let body = ["session_id": "s", "type": "page_view"]
        #expect(try await HTTP.postJSON(try await url(), body, key: nil).status == 401)
        #expect(try await HTTP.postJSON(try await url(), body, key: "wrong").status == 401)
        let viaHeader = try await HTTP.post(
            try await url(),
            body: try JSONSerialization.data(withJSONObject: body),
            headers: [("Content-Type", "application/json"), ("X-API-Key", "dev-ingest-key")]
        )
        #expect(viaHeader.status == 202)
    }

    @Test func notJSONIs415() async throws {
        let response = try await HTTP.post(
            try await url(),
            body: Data("session_id=s".utf8),
            headers: [("Content-Type", "text/plain"), ("Authorization", "Bearer dev-ingest-key")]
        )
        #expect(response.status == 415)
        #expect((response.json?["error"] as? [String: Any])?["code"] as? String == "unsupported_media_type")
    }

    @Test func bodyOver64KiBIs413() async throws {
        let big = String(repeating: "x", count: 65 * 1024)
        let response = try await HTTP.postJSON(try await url(), ["session_id": "s", "type": "page_view", "data": ["x": big]])
        #expect(response.status == 413)
    }

    @Test func malformedJSONIs400() async throws {
        let response = try await HTTP.post(
            try await url(),
            body: Data(#"{"session_id": "s", "type": "#.utf8),
            headers: [("Content-Type", "application/json"), ("Authorization", "Bearer dev-ingest-key")]
        )
        #expect(response.status == 400)
        #expect((response.json?["error"] as? [String: Any])?["code"] as? String == "malformed_json")
    }

    @Test func invalidFieldIs422AndNamed() async throws {
        let response = try await HTTP.postJSON(
            try await url(),
            ["session_id": "s", "type": "page_view", "contact": ["email": "not-an-email"]]
        )
        #expect(response.status == 422)
        let error = response.json?["error"] as? [String: Any]
        #expect(error?["field"] as? String == "contact.email")
        #expect(error?["message"] is String)
    }

    @Test func batchAcceptsAndRejectsEachEvent() async throws {
        let session = "batch-\(UUID().uuidString.prefix(8))"
        let response = try await HTTP.postJSON(
            try await url() + "/batch",
            ["events": [
                ["session_id": session, "type": "page_view"],
                ["session_id": session, "type": "nonsense"],
                ["session_id": session, "type": "search"],
            ]]
        )
        #expect(response.status == 202)
        #expect(response.json?["accepted"] as? Int == 2)
        #expect(response.json?["rejected"] as? Int == 1)
        let results = response.json?["results"] as? [[String: Any]] ?? []
        #expect(results.count == 3)
        #expect(results[1]["status"] as? String == "rejected")
        #expect((results[1]["error"] as? [String: Any])?["field"] as? String == "type")
        try await eventually("both accepted batch events stored") {
            try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session)") == 2 ? true : nil
        }
    }
}
