import Foundation
import LeadCore
import NIOHTTP1
import PostgresNIO
import Testing

/// The web kit: the snippet, browser-safe keys and CORS, the demo page in a real browser, and the
/// snippet's own unit tests under Node.
@Suite struct WebKitTests {
    @Test func snippetIsServedUnderEightKilobytes() async throws {
        let stack = try await SharedStack.shared.start()
        let response = try await HTTP.get(stack.ingest + "/sdk/lead-capture.js")
        #expect(response.status == 200)
        #expect(response.headers.first(name: "content-type")?.hasPrefix("application/javascript") == true)
        #expect(response.body.count < 8 * 1024, "\(response.body.count) bytes")
        #expect(response.text.contains("createLeadCapture"))
    }

    @Test func publishableKeysOnlyPostAndReadTheirOwnSession() async throws {
        let stack = try await SharedStack.shared.start()
        let session = "s-\(UUID().uuidString.lowercased())"
        let event = try JSONSerialization.data(withJSONObject: ["session_id": session, "type": "face_analysis"])
        let plain = [("Content-Type", "text/plain;charset=UTF-8")]
        // From a browser on an allowed origin, as sendBeacon would send it.
        let accepted = try await HTTP.post(
            stack.ingest + "/v1/interactions/batch?key=pk-dev-public",
            body: try JSONSerialization.data(withJSONObject: ["events": [["session_id": session, "type": "face_analysis"]]]),
            headers: plain + [("Origin", "https://shop.example")]
        )
        #expect(accepted.status == 202)
        #expect(accepted.headers.first(name: "access-control-allow-origin") == "https://shop.example")
        let token = try #require((accepted.json?["session_tokens"] as? [String: String])?[session])
        // A foreign origin, a secret key in a URL, a plain-text body with a secret key: refused.
        #expect(try await HTTP.post(stack.ingest + "/v1/interactions?key=pk-dev-public", body: event, headers: plain + [("Origin", "https://evil.example")]).status == 403)
        #expect(try await HTTP.post(stack.ingest + "/v1/interactions?key=dev-ingest-key", body: event, headers: [("Content-Type", "application/json")]).status == 401)
        #expect(try await HTTP.post(stack.ingest + "/v1/interactions", body: event, headers: plain + [("Authorization", "Bearer dev-ingest-key")]).status == 415)
        // Preflights: answered for allowed origins only.
        let preflight = try await HTTP.send(
            stack.ingest + "/v1/interactions/batch", method: .OPTIONS,
            headers: [("Origin", "https://shop.example"), ("Access-Control-Request-Method", "POST")], body: nil
        )
        #expect(preflight.status == 204 && preflight.headers.first(name: "access-control-allow-origin") == "https://shop.example")
        let foreign = try await HTTP.send(
            stack.ingest + "/v1/interactions/batch", method: .OPTIONS,
            headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")], body: nil
        )
        #expect(foreign.headers.first(name: "access-control-allow-origin") == nil)

        // The prompt: with the session's token only; another session's token does not open it.
        let url = stack.ingest + "/v1/sessions/\(session)/prompt?key=pk-dev-public"
        let decision = try await eventually("a decision for \(session)") { () -> [String: Any]? in
            let response = try await HTTP.get(url + "&token=\(token)")
            return response.status == 200 ? response.json : nil
        }
        #expect(decision["prompt"] as? Bool == true)  // face analysis: intent 80
        #expect(decision["fields"] as? [String] == ["name", "phone", "email"])
        #expect(Set(decision.keys) == ["session_id", "prompt", "prompt_id", "variant", "fields"], "nothing else about the visitor")
        #expect(try await HTTP.get(url).status == 403)
        let other = try await HTTP.post(
            stack.ingest + "/v1/interactions?key=pk-dev-public",
            body: try JSONSerialization.data(withJSONObject: ["session_id": "s-other-\(UUID())", "type": "page_view"]), headers: plain
        )
        let otherToken = try #require(other.json?["session_token"] as? String)
        #expect(try await HTTP.get(url + "&token=\(otherToken)").status == 403)
    }

    @Test func demoVisitorIsPromptedAndBecomesALead() async throws {
        let stack = try await SharedStack.shared.start()
        let tap = try await EventTap(routingKeys: ["lead.created"])
        let (status, output) = try await PythonScript.run(
            "Tests/browser/demo_test.py",
            ["--ingest", stack.ingest, "--admin", stack.admin, "--screenshot", TestEnvironment.testDir + "/demo.png"],
            label: "demo-browser"
        )
        #expect(status == 0, "demo browser test: \(output.suffix(2000))")
        let result = try #require(LeadCtl.lastJSON(output))
        let leadID = try #require(result["lead_id"] as? Int)
        let session = try #require(result["session_id"] as? String)
        try await eventually("lead.created for lead \(leadID)") {
            tap.messages(routingKey: "lead.created") { $0["id"] as? Int == leadID }.first
        }
        // Stitched: every interaction of the visitor's session, anonymous ones included, belongs to the lead.
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND lead_id IS DISTINCT FROM \(Int64(leadID))") == 0)
        #expect(try await TestDatabase.count("SELECT count(*) FROM user_interactions WHERE session_id = \(session) AND interaction_type = 'page_view'") >= 1)
        await tap.close()
    }

    @Test func snippetUnitTestsPassUnderNode() async throws {
        let output = TestEnvironment.testDir + "/logs/node-test.log"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["node", "--test", TestEnvironment.repositoryRoot + "/Tests/web/"]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await process.exited()
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "node --test: \(log.suffix(1500))")
    }
}
