import AMQP
import Foundation
import LeadCore
import PostgresNIO
import Testing

/// Progressive profiling on the running stack: decisions, cool-down, cap, consent, and two workers racing.
/// Serialized: the racing test's second worker would otherwise apply other tests' sessions out of order.
@Suite(.serialized) struct ConversionTests {
    let admin = "http://127.0.0.1:\(SharedStack.adminPort)"
    let adminAuth = [("Authorization", "Bearer dev-admin-token")]
    /// Each test's clock: event times are fixed offsets from it, so a slow machine cannot stretch them.
    let now = Date()

    func ingest() async throws -> String { try await SharedStack.shared.start().ingest + "/v1/interactions" }

    func session(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(10).lowercased())" }

    func post(_ session: String, _ type: String, minutesAgo: Double, extra: [String: Any] = [:]) async throws {
        var event: [String: Any] = [
            "session_id": session, "type": type,
            "occurred_at": JSONCoding.formatTimestamp(now.addingTimeInterval(-minutesAgo * 60)),
        ]
        for (key, value) in extra { event[key] = value }
        let response = try await HTTP.postJSON(try await ingest(), event)
        #expect(response.status == 202)
    }

    func decision(_ session: String) async throws -> [String: Any]? {
        let response = try await HTTP.get("\(admin)/v1/sessions/\(session)/prompt", headers: adminAuth)
        return response.status == 200 ? response.json : nil
    }

    func prompts(_ session: String) async throws -> Int {
        try await TestDatabase.count("SELECT count(*) FROM conversion_prompts WHERE session_id = \(session)")
    }

    /// The session's row, for failure messages.
    func describe(_ session: String) async throws -> String {
        let row = try await TestDatabase.scalar(
            "SELECT row_to_json(s)::text FROM conversion_sessions s WHERE session_id = \(session)", as: String.self
        )
        return row ?? "no session row"
    }

    /// Waits until lead-conversion has applied `count` interactions of the session.
    func applied(_ session: String, _ count: Int) async throws {
        try await eventually("\(count) interactions of \(session) applied") {
            try await TestDatabase.count("SELECT interaction_count FROM conversion_sessions WHERE session_id = \(session)") == count ? true : nil
        }
    }

    @Test func highIntentPromptsThenContactConverts() async throws {
        _ = try await SharedStack.shared.start()
        let tap = try await EventTap(routingKeys: ["conversion.prompt"])
        let id = session("conv")
        try await post(id, "page_view", minutesAgo: 5)
        try await post(id, "face_analysis", minutesAgo: 4)  // intent 80 + 5: above both variants' thresholds
        try await applied(id, 2)
        let body = try #require(try await decision(id))
        #expect(body["prompt"] as? Bool == true)
        #expect(body["fields"] as? [String] == ["name", "phone", "email"])
        #expect(body["intent_score"] as? Int == 85)
        #expect(body["variant"] as? String == SessionState.Variant(sessionID: id).rawValue)
        let promptID = try #require(body["prompt_id"] as? String)
        try await eventually("conversion.prompt published") {
            tap.messages(routingKey: "conversion.prompt") { $0["prompt_id"] as? String == promptID }.first
        }

        try await post(id, "consultation", minutesAgo: 2, extra: ["contact": ["name": "Kabir Singh", "email": "\(id)@example.com"]])
        try await applied(id, 3)
        let after = try #require(try await decision(id))
        #expect(after["prompt"] as? Bool == false)
        #expect(after["reason"] as? String == "contact already known")
        #expect(after["fields"] as? [String] == ["phone"])
        let converted = try await TestDatabase.scalar(
            "SELECT conversion_seconds FROM conversion_prompts WHERE id = \(UUID(uuidString: promptID)!) AND status = 'converted'",
            as: Double.self
        )
        #expect(converted.map { abs($0 - 120) < 1 } == true)
        await tap.close()
    }

    @Test func lowIntentDoesNotPrompt() async throws {
        let id = session("low")
        try await post(id, "page_view", minutesAgo: 3)
        try await post(id, "search", minutesAgo: 2)
        try await applied(id, 2)
        let body = try #require(try await decision(id))
        #expect(body["prompt"] as? Bool == false)
        #expect((body["reason"] as? String)?.hasPrefix("intent 10 below threshold") == true)
    }

    @Test func coolDownAndCapLimitPrompts() async throws {
        let id = session("cap")
        // Minutes relative to the first interaction: prompt, cool-down, prompt, prompt, cap.
        for (index, minute) in [0.0, 10, 31, 62, 93].enumerated() {
            try await post(id, "consultation", minutesAgo: 180 - minute)
            try await applied(id, index + 1)
        }
        #expect(try await prompts(id) == 3)
        let body = try #require(try await decision(id))
        #expect(body["reason"] as? String == "already prompted 3 times")
    }

    @Test func withdrawnConsentAndDismissalSilenceTheSession() async throws {
        let withdrawn = session("consent")
        try await post(withdrawn, "face_analysis", minutesAgo: 10, extra: ["consent": ["marketing": false]])
        try await post(withdrawn, "consultation", minutesAgo: 5)
        try await applied(withdrawn, 2)
        #expect(try await prompts(withdrawn) == 0)

        let dismissed = session("dismiss")
        try await post(dismissed, "face_analysis", minutesAgo: 60)
        try await applied(dismissed, 1)
        let first = try await prompts(dismissed)
        let row = first == 1 ? "" : try await describe(dismissed)
        #expect(first == 1, "session after its first interaction: \(row)")
        try await post(dismissed, "prompt_dismissed", minutesAgo: 59)
        try await post(dismissed, "consultation", minutesAgo: 10)  // past the cool-down, inside the 24 h silence
        try await applied(dismissed, 3)
        #expect(try await prompts(dismissed) == 1)
        let body = try #require(try await decision(dismissed))
        #expect((body["reason"] as? String)?.hasPrefix("suppressed until") == true)
    }

    @Test func unknownSessionIs404AndTokenIsRequired() async throws {
        _ = try await SharedStack.shared.start()
        #expect(try await HTTP.get("\(admin)/v1/sessions/never-seen-\(UUID())/prompt", headers: adminAuth).status == 404)
        #expect(try await HTTP.get("\(admin)/v1/sessions/x/prompt").status == 401)
        #expect(try await HTTP.get("\(admin)/v1/sessions/x/prompt", headers: [("Authorization", "Bearer nope")]).status == 401)
    }

    @Test func twoWorkersRacingOnOneSessionMakeOnePrompt() async throws {
        _ = try await SharedStack.shared.start()
        let port = TestEnvironment.freePort()
        let second = try await ServiceProcess.start(
            "lead-conversion",
            environment: ["CONVERSION_METRICS_PORT": "\(port)", "CONVERSION_BATCH": "5", "CONVERSION_PREFETCH": "5"],
            readyPort: port
        )
        let id = session("race")
        let at = JSONCoding.formatTimestamp(Date().addingTimeInterval(-60))
        let events = (0..<60).map { _ in ["session_id": id, "type": "consultation", "occurred_at": at] }
        let response = try await HTTP.postJSON(try await ingest() + "/batch", ["events": events])
        #expect(response.json?["accepted"] as? Int == 60)
        try await applied(id, 60)
        #expect(try await prompts(id) == 1)
        // Both workers took part.
        let metrics = try await HTTP.get("http://127.0.0.1:\(port)/metrics").text
        let processed = metrics.split(separator: "\n").first { $0.hasPrefix("consumer_messages_processed_total") }
        #expect(processed.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }.map { $0 > 0 } == true)
        try await second.terminate()
        #expect(second.exitStatus == 0)
    }
}
