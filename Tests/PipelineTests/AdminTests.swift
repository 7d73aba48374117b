import AMQP
import LeadCore
import Foundation
import LeadService
import Logging
import NIOHTTP1
import PostgresNIO
import Testing

/// lead-admin's API on the running stack: filters, keyset pages, a lead's history, CSV, outcomes (HTTP and
/// `lead.outcome` messages), and analytics checked against aggregates this test computes from its own seed.
@Suite struct AdminTests {
    let admin = "http://127.0.0.1:\(SharedStack.adminPort)"
    let auth = [("Authorization", "Bearer dev-admin-token")]

    func get(_ path: String) async throws -> HTTP.Response {
        _ = try await SharedStack.shared.start()
        return try await HTTP.get(admin + path, headers: auth)
    }

    func post(_ path: String, _ body: [String: Any]) async throws -> HTTP.Response {
        try await HTTP.post(
            admin + path, body: try JSONSerialization.data(withJSONObject: body),
            headers: auth + [("Content-Type", "application/json")]
        )
    }

    @Test func everyAdminEndpointRequiresTheToken() async throws {
        _ = try await SharedStack.shared.start()
        for path in ["/v1/leads", "/v1/leads.csv", "/v1/leads/1", "/v1/analytics/funnel", "/v1/analytics/roi", "/v1/contacts/export?email=a@b.co"] {
            #expect(try await HTTP.get(admin + path).status == 401, "\(path)")
            #expect(try await HTTP.get(admin + path, headers: [("Authorization", "Bearer wrong")]).status == 401, "\(path)")
        }
        let dashboard = try await HTTP.get(admin + "/admin")  // redirected to the sign-in page (the client follows)
        #expect(dashboard.text.contains("action=\"/admin/login\"") && !dashboard.text.contains("Live alerts"))
        #expect(try await HTTP.get(admin + "/admin/alerts/stream").status == 401)
        #expect(try await HTTP.get(admin + "/healthz").status == 200)
    }

    // MARK: - Leads made by the pipeline

    /// Three leads through ingest and the scorer, tagged so filters can find exactly them.
    func makeLeads(tag: String) async throws -> [Int64] {
        let ingest = try await SharedStack.shared.start().ingest + "/v1/interactions"
        let people: [(String, String, [String: Any])] = [
            ("face_analysis", "Meera \(tag)", ["recommendations": [["procedure": "Rhinoplasty"]], "urgency": "immediate"]),
            ("ai_recommendation", "Kiran \(tag)", ["procedure": "Botox"]),
            ("consultation", "Anil \(tag)", ["procedure": "Hair Transplant"]),
        ]
        for (index, person) in people.enumerated() {
            let response = try await HTTP.postJSON(ingest, [
                "session_id": "admin-\(tag)-\(index)", "type": person.0, "data": person.2,
                "contact": ["name": person.1, "email": "\(tag)-\(index)@example.com"],
            ])
            #expect(response.status == 202)
        }
        return try await eventually("three leads tagged \(tag)") {
            let body = try await get("/v1/leads?q=\(tag)").json
            let ids = (body?["leads"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? Int).map(Int64.init) }
            return ids.count == 3 ? ids : nil
        }
    }

    @Test func filtersPagesAndHistoryOfRealLeads() async throws {
        let tag = "t\(UUID().uuidString.prefix(8).lowercased())"
        let ids = try await makeLeads(tag: tag)
        #expect(ids == ids.sorted(by: >))  // newest first

        let face = try await get("/v1/leads?q=\(tag)&type=face_analysis").json?["leads"] as? [[String: Any]]
        #expect(face?.map { $0["patient_name"] as? String } == ["Meera \(tag)"])
        // Free text ignores case, in the name and in the procedure; % and _ in it are literal.
        let shouted = try await get("/v1/leads?q=MEERA%20\(tag.uppercased())").json?["leads"] as? [[String: Any]]
        #expect(shouted?.map { $0["patient_name"] as? String } == ["Meera \(tag)"])
        let byProcedure = try await get("/v1/leads?q=rHiNoPlAsTy&limit=500").json?["leads"] as? [[String: Any]]
        #expect(byProcedure?.contains { $0["patient_name"] as? String == "Meera \(tag)" } == true)
        let literal = try await get("/v1/leads?q=\(tag)%25").json?["leads"] as? [[String: Any]]
        #expect(literal?.isEmpty == true)
        let consultation = try await get("/v1/leads?q=\(tag)&source=Consultation").json?["leads"] as? [[String: Any]]
        #expect(consultation?.count == 1)
        let hot = try await get("/v1/leads?q=\(tag)&score_min=90").json?["leads"] as? [[String: Any]]
        #expect(hot?.allSatisfy { ($0["lead_score"] as? Int ?? 0) >= 90 } == true)
        #expect(hot?.contains { $0["patient_name"] as? String == "Meera \(tag)" } == true)  // 80 + 25 urgency, capped at 100

        // Keyset pages of two: the second page holds the third lead, nothing repeats.
        let first = try #require(try await get("/v1/leads?q=\(tag)&limit=2").json)
        let firstIDs = (first["leads"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        let next = try #require(first["next"] as? String)
        let second = try await get(next).json?["leads"] as? [[String: Any]] ?? []
        #expect(firstIDs + second.compactMap { $0["id"] as? Int } == ids.map { Int($0) })

        // One lead: its interactions, and a score history whose rules add up to the score.
        let lead = try #require(try await get("/v1/leads/\(ids[2])").json)
        #expect((lead["interactions"] as? [[String: Any]])?.count == 1)
        let history = try #require(lead["score_history"] as? [[String: Any]])
        let breakdown = try #require(history.last?["breakdown"] as? [[String: Any]])
        #expect(breakdown.reduce(0) { $0 + ($1["points"] as? Int ?? 0) } == lead["lead_score"] as? Int)
        #expect(try await get("/v1/leads/999999999").status == 404)
        #expect(try await get("/v1/leads?score_min=101").status == 422)
        #expect(try await get("/v1/leads?type=purchase").status == 422)

        // The CSV has the same leads, streamed.
        let csv = try await get("/v1/leads.csv?q=\(tag)")
        #expect(csv.headers.first(name: "content-type")?.hasPrefix("text/csv") == true)
        let lines = csv.text.split(separator: "\r\n")
        #expect(lines.first?.hasPrefix("id,patient_name") == true)
        #expect(lines.count == 4)
    }

    @Test func outcomesFromTheAPIAndFromCRMMessages() async throws {
        let tag = "o\(UUID().uuidString.prefix(8).lowercased())"
        let ids = try await makeLeads(tag: tag)
        let booked = try await post("/v1/leads/\(ids[0])/outcome", ["status": "booked"])
        #expect(booked.status == 200)
        #expect(booked.json?["status"] as? String == "booked")
        #expect(try await post("/v1/leads/\(ids[0])/outcome", ["status": "sold"]).status == 422)
        #expect(try await post("/v1/leads/999999999/outcome", ["status": "booked"]).status == 404)

        // A CRM says converted, twice (one message id): one outcome row, status converted.
        let publisher = AMQPConnection(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), name: "test-crm",
            topology: LeadTopology.exchanges, logger: Logger(label: "test-crm")
        )
        #expect(await publisher.waitUntilConnected(timeout: .seconds(10)))
        let message = OutgoingMessage(
            exchange: LeadTopology.eventsExchange, routingKey: "lead.outcome",
            body: try JSONSerialization.data(withJSONObject: ["lead_id": ids[1], "status": "converted", "occurred_at": JSONCoding.formatTimestamp(Date())]),
            messageID: "crm-\(tag)"
        )
        try await publisher.publish(message)
        try await publisher.publish(message)
        try await eventually("lead \(ids[1]) converted by the CRM message") {
            try await get("/v1/leads/\(ids[1])").json?["status"] as? String == "converted" ? true : nil
        }
        await publisher.close()
        let outcomes = try await get("/v1/leads/\(ids[1])").json?["outcomes"] as? [[String: Any]]
        #expect(outcomes?.map { $0["status"] as? String } == ["converted"])
        #expect(outcomes?.first?["reported_via"] as? String == "message")
    }

    @Test func exportThenEraseAPerson() async throws {
        let tag = "g\(UUID().uuidString.prefix(8).lowercased())"
        let tap = try await EventTap(routingKeys: ["contact.erased"])
        let ids = try await makeLeads(tag: tag)
        let email = "\(tag)-0@example.com"
        let export = try #require(try await get("/v1/contacts/export?email=\(email.uppercased())").json)
        let records = try #require(export["leads"] as? [[String: Any]])
        #expect(records.count == 1)
        #expect((records.first?["lead"] as? [String: Any])?["patient_name"] as? String == "Meera \(tag)")
        #expect((records.first?["interactions"] as? [Any])?.count == 1)
        #expect(try await get("/v1/contacts/export").status == 422)

        let erased = try await post("/v1/contacts/erase", ["email": email])
        #expect(erased.json?["leads"] as? Int == 1)
        let erasureID = try #require(erased.json?["erasure_id"] as? String)
        #expect((try await get("/v1/contacts/export?email=\(email)").json?["leads"] as? [Any])?.isEmpty == true)
        let lead = try #require(try await get("/v1/leads/\(ids[2])").json)
        #expect(lead["patient_name"] is NSNull && lead["email"] is NSNull)
        #expect(lead["lead_score"] as? Int != nil)  // the counts stay
        let announced = try await eventually("contact.erased published") {
            tap.messages(routingKey: "contact.erased") { $0["erasure_id"] as? String == erasureID }.first
        }
        let body = String(decoding: announced.body, as: UTF8.self)
        #expect(body.contains("\(ids[2])") && !body.contains(tag))
        await tap.close()
    }

    // MARK: - Analytics over a seeded month

    /// The funnel's stages as stage → count.
    func stageCounts(_ funnel: [String: Any]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: (funnel["stages"] as? [[String: Any]] ?? []).map { ($0["stage"] as? String ?? "", $0["count"] as? Int ?? -1) })
    }

    /// A lead as the seed writes it straight into the tables, in a month no other test touches.
    struct Seed {
        var source: String
        var type: String
        var score: Int
        var status: String
        var at: Date
    }

    @Test func analyticsMatchAggregatesComputedHere() async throws {
        _ = try await SharedStack.shared.start()
        // A January of its own: no other test writes before 2020, and an earlier run of this one on the same
        // database (a local re-run) used another year.
        let year = try #require(try await TestDatabase.scalar(
            """
            SELECT y FROM generate_series(2001, 2019) AS y
            WHERE NOT EXISTS (SELECT 1 FROM leads WHERE created_at >= make_date(y, 1, 1) AND created_at < make_date(y, 3, 1))
              AND NOT EXISTS (SELECT 1 FROM conversion_sessions WHERE created_at >= make_date(y, 1, 1) AND created_at < make_date(y, 3, 1))
            ORDER BY random() LIMIT 1
            """,
            as: Int.self
        ), "no unused January left between 2001 and 2019")
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: year, month: 1, day: 5))!
        let end = start.addingTimeInterval(14 * 86_400)
        let plan: [(String, String, Int, String)] = [
            ("Face Analysis", "face_analysis", 95, "converted"), ("Face Analysis", "face_analysis", 85, "booked"),
            ("Face Analysis", "face_analysis", 82, "lost"), ("AI Recommendation", "ai_recommendation", 65, "converted"),
            ("AI Recommendation", "ai_recommendation", 62, "new"), ("AI Recommendation", "ai_recommendation", 45, "contacted"),
            ("Consultation", "consultation", 30, "new"), ("Consultation", "consultation", 91, "converted"),
            ("Package Inquiry", "package_inquiry", 75, "lost"), ("Package Inquiry", "package_inquiry", 72, "new"),
        ]
        let seeds = plan.enumerated().map { index, row in
            Seed(source: row.0, type: row.1, score: row.2, status: row.3, at: start.addingTimeInterval(Double(index) * 31 * 3600 + 600))
        }
        let anonymous = (0..<5).map { start.addingTimeInterval(Double($0) * 86_400 + 10 * 3600) }
        let db = TestDatabase.client
        let logger = TestDatabase.logger
        let tag = "seed-\(year)-\(UUID().uuidString.prefix(6))"
        var leadIDs: [Int64] = []
        for (index, seed) in seeds.enumerated() {
            let engagement = seed.score >= 70 ? "high" : seed.score >= 40 ? "medium" : "low"
            let rows = try await db.query(
                """
                INSERT INTO leads (patient_name, source, procedure_name, lead_score, engagement_level, status, session_id, created_at, updated_at, last_interaction_at)
                VALUES (\("Seed \(index)"), \(seed.source), 'Botox', \(seed.score), \(engagement), \(seed.status), \("\(tag)-\(index)"), \(seed.at), \(seed.at), \(seed.at))
                RETURNING id
                """,
                logger: logger
            )
            var leadID: Int64 = 0
            for try await id in rows.decode(Int64.self) { leadID = id }
            leadIDs.append(leadID)
            try await db.query(
                """
                INSERT INTO user_interactions (event_id, session_id, interaction_type, lead_id, converted_to_lead, score, occurred_at)
                VALUES (\(UUID()), \("\(tag)-\(index)"), \(seed.type), \(leadID), true, \(seed.score), \(seed.at))
                """,
                logger: logger
            )
        }
        for (index, at) in anonymous.enumerated() {
            try await db.query(
                "INSERT INTO user_interactions (event_id, session_id, interaction_type, occurred_at) VALUES (\(UUID()), \("\(tag)-anon-\(index)"), 'page_view', \(at))",
                logger: logger
            )
        }
        for index in 0..<4 {
            try await db.query(
                "INSERT INTO conversion_sessions (session_id, variant, state, created_at) VALUES (\("\(tag)-s\(index)"), 'A', '{}', \(start.addingTimeInterval(Double(index) * 3600)))",
                logger: logger
            )
        }
        for index in 0..<2 {
            try await db.query(
                """
                INSERT INTO conversion_prompts (id, session_id, event_id, variant, intent_score, reason, fields, created_at)
                VALUES (\(UUID()), \("\(tag)-s\(index)"), \(UUID()), 'A', 80, 'seed', '{name,phone,email}', \(start.addingTimeInterval(Double(index) * 3600 + 60)))
                """,
                logger: logger
            )
        }
        let range = "from=\(JSONCoding.formatTimestamp(start))&to=\(JSONCoding.formatTimestamp(end))"

        // Funnel: every stage, and each source's stages.
        let funnel = try #require(try await get("/v1/analytics/funnel?\(range)").json)
        let stages = stageCounts(funnel)
        func reached(_ statuses: Set<String>) -> Int { seeds.filter { statuses.contains($0.status) }.count }
        #expect(stages["interactions"] == seeds.count + anonymous.count)
        #expect(stages["sessions"] == 4)
        #expect(stages["prompted"] == 2)
        #expect(stages["leads"] == seeds.count)
        #expect(stages["contacted"] == reached(["contacted", "booked", "converted"]))
        #expect(stages["booked"] == reached(["booked", "converted"]))
        #expect(stages["converted"] == reached(["converted"]))
        let face = (funnel["by_source"] as? [[String: Any]])?.first { $0["source"] as? String == "Face Analysis" }
        #expect(face?["leads"] as? Int == seeds.filter { $0.source == "Face Analysis" }.count)
        #expect(face?["lost"] as? Int == seeds.filter { $0.source == "Face Analysis" && $0.status == "lost" }.count)
        let perDay = (funnel["by_period"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["leads"] as? Int ?? 0) }
        #expect(perDay == seeds.count)

        // A range that starts and ends inside a day and an hour: whole days come from the daily counts, the
        // ends from the rows, and nothing outside the range is counted.
        let (edgeFrom, edgeTo) = (start.addingTimeInterval(1800), start.addingTimeInterval(9 * 31 * 3600 + 300))
        let edged = try #require(try await get(
            "/v1/analytics/funnel?from=\(JSONCoding.formatTimestamp(edgeFrom))&to=\(JSONCoding.formatTimestamp(edgeTo))"
        ).json)
        let edgeStages = stageCounts(edged)
        let inEdge = seeds.filter { $0.at >= edgeFrom && $0.at < edgeTo }
        #expect(inEdge.count == seeds.count - 2)
        #expect(edgeStages["interactions"] == inEdge.count + anonymous.filter { $0 >= edgeFrom && $0 < edgeTo }.count)
        #expect(edgeStages["sessions"] == 3)  // started 1, 2 and 3 hours in; the one at 0 is before the range
        #expect(edgeStages["prompted"] == 1)  // first prompted 1 hour and 1 minute in
        #expect(edgeStages["leads"] == inEdge.count)
        #expect(edgeStages["converted"] == inEdge.filter { $0.status == "converted" }.count)
        #expect((edged["by_period"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["leads"] as? Int ?? 0) } == inEdge.count)

        // An outcome moves a lead between the daily counts.
        let newLead = try #require(seeds.indices.first { seeds[$0].status == "new" })
        try await db.query("UPDATE leads SET status = 'converted' WHERE id = \(leadIDs[newLead])", logger: logger)
        let moved = try #require(try await get("/v1/analytics/funnel?\(range)").json)
        let movedStages = stageCounts(moved)
        #expect(movedStages["converted"] == reached(["converted"]) + 1)
        #expect(movedStages["leads"] == seeds.count)
        try await db.query("UPDATE leads SET status = 'new' WHERE id = \(leadIDs[newLead])", logger: logger)
        #expect(try await db.rollupMismatches() == 0)

        // Heatmap: the cells this test's timestamps fall into.
        let heatmap = try #require(try await get("/v1/analytics/heatmap?\(range)").json)
        var expectedCells: [String: Int] = [:]
        let stamped: [(String, Date)] = seeds.map { ($0.type, $0.at) } + anonymous.map { ("page_view", $0) }
        for (type, at) in stamped {
            let weekday = (calendar.component(.weekday, from: at) + 5) % 7 + 1  // ISO: Monday 1
            expectedCells["\(type) \(weekday) \(calendar.component(.hour, from: at))", default: 0] += 1
        }
        var cells: [String: Int] = [:]
        for cell in heatmap["cells"] as? [[String: Any]] ?? [] {
            cells["\(cell["type"] as? String ?? "") \(cell["weekday"] as? Int ?? 0) \(cell["hour"] as? Int ?? 0)"] = cell["interactions"] as? Int
        }
        #expect(cells == expectedCells)

        // Scoring: conversion rate per band, and the verdict the seed implies.
        let scoring = try #require(try await get("/v1/analytics/scoring?\(range)").json)
        var rates: [Double] = []
        for band in scoring["bands"] as? [[String: Any]] ?? [] {
            let bounds = (band["band"] as? String ?? "").split(separator: "-").compactMap { Int($0) }
            let inBand = seeds.filter { bounds.count == 2 && $0.score >= bounds[0] && $0.score <= bounds[1] }
            #expect(band["leads"] as? Int == inBand.count, "band \(band["band"] ?? "")")
            #expect(band["converted"] as? Int == inBand.filter { $0.status == "converted" }.count)
            if !inBand.isEmpty { rates.append(Double(inBand.filter { $0.status == "converted" }.count) / Double(inBand.count)) }
        }
        #expect(scoring["higher_score_converts_better"] as? Bool == zip(rates, rates.dropFirst()).allSatisfy { $0 <= $1 })

        // ROI with the shared stack's SOURCE_COSTS (Face Analysis=3000).
        let roi = try #require(try await get("/v1/analytics/roi?\(range)").json)
        let faceROI = try #require((roi["sources"] as? [[String: Any]])?.first { $0["source"] as? String == "Face Analysis" })
        let faceLeads = seeds.filter { $0.source == "Face Analysis" }
        #expect(faceROI["cost_per_lead"] as? Double == 3000 / Double(faceLeads.count))
        #expect(faceROI["cost_per_conversion"] as? Double == 3000 / Double(faceLeads.filter { $0.status == "converted" }.count))
        #expect((roi["sources"] as? [[String: Any]])?.first { $0["source"] as? String == "Consultation" }?["cost_per_lead"] is NSNull)

        // Flow: source → first interaction → outcome.
        let flow = try #require(try await get("/v1/analytics/flow?\(range)").json)
        let flows = (flow["flows"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) { result, row in
            result["\(row["source"] ?? "") \(row["first_interaction_type"] ?? "") \(row["outcome"] ?? "")"] = row["leads"] as? Int
        }
        let expectedFlows = seeds.reduce(into: [String: Int]()) { $0["\($1.source) \($1.type) \($1.status)", default: 0] += 1 }
        #expect(flows == expectedFlows)

        #expect(try await get("/v1/analytics/funnel?from=\(JSONCoding.formatTimestamp(end))&to=\(JSONCoding.formatTimestamp(start))").status == 422)
    }
}
