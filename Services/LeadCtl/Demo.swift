import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Sends realistic demo traffic to lead-ingest: anonymous browsing, CTAs, some visitors leaving contact details.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send demo traffic to lead-ingest.")

    @Option(help: "Ingest base URL.") var url = "http://127.0.0.1:8080"
    @Option(help: "Ingest API key.") var key = ProcessInfo.processInfo.environment["INGEST_API_KEYS"]?
        .split(separator: ",").first.map(String.init) ?? "dev-ingest-key"
    @Option(help: "Visitors per second.") var rate = 2.0
    @Option(help: "Stop after this many visitors (0: run until interrupted).") var visitors = 0

    func run() async throws {
        var generator = SystemRandomNumberGenerator()
        var sent = 0
        var accepted = 0
        var count = 0
        let client = HTTPClient.shared
        while visitors == 0 || count < visitors {
            count += 1
            let events = DemoVisitor.events(number: count, using: &generator)
            for event in events {
                var request = HTTPClientRequest(url: "\(url)/v1/interactions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Authorization", value: "Bearer \(key)")
                request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: event)))
                sent += 1
                if let response = try? await client.execute(request, timeout: .seconds(5)) {
                    // Read to its end: a response dropped unread closes its keep-alive connection.
                    _ = try? await response.body.collect(upTo: 64 * 1024)
                    if response.status.code == 202 { accepted += 1 }
                }
            }
            if count % 10 == 0 { print("demo: \(count) visitors, \(sent) events sent, \(accepted) accepted") }
            try await Task.sleep(for: .milliseconds(Int(1000 / max(rate, 0.01))))
        }
        print("demo: done, \(sent) events sent, \(accepted) accepted")
    }
}

/// One synthetic visitor's journey on the marketplace.
enum DemoVisitor {
    static let names = ["Asha Rao", "Vikram Mehta", "Priya Nair", "Rohan Gupta", "Meera Iyer", "Kabir Singh", "Ananya Das", "Arjun Reddy"]
    static let procedures = ["Rhinoplasty", "Botox", "Lip Fillers", "Hair Transplant", "Liposuction", "Laser Hair Removal", "Chemical Peel"]
    static let journeys: [[String]] = [
        ["page_view", "search", "page_view"],
        ["page_view", "ai_recommendation"],
        ["page_view", "face_analysis", "package_inquiry"],
        ["search", "cost_calculator", "cost_calculator"],
        ["page_view", "page_view", "consultation"],
        ["page_view", "community_engagement", "appointment_booking"],
    ]

    static func events(number: Int, using generator: inout some RandomNumberGenerator) -> [[String: Any]] {
        let session = "demo-\(UUID().uuidString.prefix(8).lowercased())"
        let journey = journeys.randomElement(using: &generator)!
        let givesContact = Double.random(in: 0..<1, using: &generator) < 0.35
        let name = names.randomElement(using: &generator)!
        let procedure = procedures.randomElement(using: &generator)!
        return journey.enumerated().map { index, type in
            var event: [String: Any] = ["session_id": session, "type": type, "source_page": "/\(type.replacingOccurrences(of: "_", with: "-"))"]
            var data: [String: Any] = ["procedure": procedure]
            if type == "face_analysis" { data["recommendations"] = [["procedure": procedure], ["procedure": procedures.randomElement(using: &generator)!]] }
            if type == "cost_calculator" {
                data["budget_range"] = ["low", "medium", "high"].randomElement(using: &generator)!
                data["get_quote"] = index == journey.count - 1
            }
            if Bool.random(using: &generator), type != "page_view" { data["urgency"] = "immediate" }
            event["data"] = data
            if givesContact, index == journey.count - 1 {
                let handle = name.lowercased().replacingOccurrences(of: " ", with: ".")
                event["contact"] = [
                    "name": name,
                    "email": "\(handle).\(number)@example.com",
                    "phone": "+91 9\(String(format: "%09d", Int.random(in: 0..<1_000_000_000, using: &generator)))",
                ]
            }
            return event
        }
    }
}
