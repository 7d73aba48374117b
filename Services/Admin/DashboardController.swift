import Foundation
import HTTPTypes
import Hummingbird
import LeadCore
import LeadService
import Logging
import Mustache
import NIOCore
import PostgresNIO

/// The dashboard at `/admin`: server-rendered pages (swift-mustache templates embedded in the binary), charts
/// as inline SVG, the lead table and lead page over the same queries as the API, and the live alert feed.
/// Signing in with the admin token sets an HttpOnly, SameSite=Strict cookie scoped to `/admin`.
struct DashboardController: Sendable {
    let session: AdminSession
    let leads: LeadsController
    let analytics: Analytics
    let feed: AlertFeed
    let client: PostgresClient
    let library: MustacheLibrary

    init(token: String, leads: LeadsController, analytics: Analytics, feed: AlertFeed, client: PostgresClient) throws {
        session = AdminSession(token: token)
        self.leads = leads
        self.analytics = analytics
        self.feed = feed
        self.client = client
        var library = MustacheLibrary()
        for (name, bytes) in [
            ("layout", PackageResources.layout_mustache), ("login", PackageResources.login_mustache),
            ("dashboard", PackageResources.dashboard_mustache), ("leads", PackageResources.leads_mustache),
            ("lead", PackageResources.lead_mustache),
        ] {
            try library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        self.library = library
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("admin/login") { _, _ in page("login", title: "Sign in", [:], signedIn: nil) }
        router.post("admin/login", use: login)
        router.post("admin/logout") { request, _ in
            guard let cookie = try await signedIn(request, form: await form(request)) else { return redirectToLogin() }
            _ = cookie
            var response = Response.redirect(to: "/admin/login", type: .normal)
            response.setCookie(.init(name: AdminSession.cookieName, value: "", maxAge: 0, path: "/admin", httpOnly: true, sameSite: .strict))
            return response
        }
        router.get("admin", use: dashboard)
        router.get("admin/leads", use: leadList)
        router.get("admin/leads.csv") { request, context in
            guard try await signedIn(request) != nil else { return redirectToLogin() }
            do {
                return try leads.csvResponse(try LeadFilter(request.queryDictionary), logger: context.logger)
            } catch let error as APIError {
                return Response(status: error.status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: error.message)))
            }
        }
        router.get("admin/leads/{id}", use: leadPage)
        router.post("admin/leads/{id}/outcome", use: recordOutcome)
        router.get("admin/alerts/stream") { request, _ in
            guard try await signedIn(request) != nil else {
                return Response(status: .unauthorized, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "sign in first")))
            }
            return feed.eventStreamResponse()
        }
    }

    // MARK: - Sign-in

    /// The session cookie when it is valid; for a form post, also requires its CSRF token.
    private func signedIn(_ request: Request, form: [String: String]? = nil) async throws -> String? {
        guard let cookie = request.cookies[AdminSession.cookieName]?.value, session.isValid(cookie) else { return nil }
        if let form {
            guard let csrf = form["csrf"], constantTimeEquals(csrf, session.csrf(for: cookie)) else { return nil }
        }
        return cookie
    }

    private func form(_ request: Request) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 16 * 1024)
        return FormBody.parse(String(buffer: body))
    }

    private func redirectToLogin() -> Response {
        .redirect(to: "/admin/login", type: .normal)
    }

    @Sendable func login(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let fields = try await form(request)
        guard let token = fields["token"], session.tokenMatches(token) else {
            context.logger.notice("dashboard sign-in refused")
            return page("login", title: "Sign in", ["error": "That token is not valid."], signedIn: nil, status: .unauthorized)
        }
        var response = Response.redirect(to: "/admin", type: .normal)
        response.setCookie(
            .init(
                name: AdminSession.cookieName, value: session.issue(), maxAge: Int(AdminSession.lifetime), path: "/admin",
                httpOnly: true, sameSite: .strict
            )
        )
        return response
    }

    // MARK: - Pages

    @Sendable func dashboard(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let cookie = try await signedIn(request) else { return redirectToLogin() }
        let days = Int(request.uri.queryParameters["days"].map(String.init) ?? "") ?? 30
        let span = [1, 7, 30, 90, 365].contains(days) ? days : 30
        let now = Date()
        let range = try Analytics.Range(["from": JSONCoding.formatTimestamp(now.addingTimeInterval(-Double(span) * 86_400)), "to": JSONCoding.formatTimestamp(now)])
        let logger = context.logger
        async let funnel = analytics.funnel(range, period: span > 90 ? "week" : "day", logger: logger)
        async let heatmap = analytics.heatmap(range, logger: logger)
        async let scoring = analytics.scoring(range, logger: logger)
        async let roi = analytics.roi(range, logger: logger)
        async let flow = analytics.flow(range, logger: logger)
        var hotFilter = LeadFilter()
        hotFilter.sortByHeat = true
        hotFilter.limit = 10
        async let hot = leads.leads(hotFilter, logger: logger)

        let stages = try await funnel["stages"]?.arrayValue ?? []
        let count: (String) -> Int = { name in stages.first { $0["stage"]?.stringValue == name }?["count"]?.intValue ?? 0 }
        let leadCount = count("leads")
        var kpis: [[String: Any]] = ["interactions", "sessions", "prompted", "leads", "contacted", "booked", "converted"].map {
            ["label": $0, "value": Charts.number(count($0))]
        }
        kpis.append(["label": "lead → converted", "value": leadCount == 0 ? "–" : percent(Double(count("converted")) / Double(leadCount))])

        let funnelChart = Charts.funnel([
            ["interactions", "sessions", "prompted"].map { (label: $0, value: count($0)) },
            ["leads", "contacted", "booked", "converted"].map { (label: $0, value: count($0)) },
        ])
        let daily = (try await funnel["by_period"]?.arrayValue ?? []).map { row in
            (label: String((row["period_start"]?.stringValue ?? "").prefix(10).dropFirst(5)), value: row["leads"]?.intValue ?? 0)
        }
        var grid = Array(repeating: Array(repeating: 0, count: 24), count: 7)
        for cell in try await heatmap["cells"]?.arrayValue ?? [] {
            let day = (cell["weekday"]?.intValue ?? 1) - 1
            let hour = cell["hour"]?.intValue ?? 0
            if (0..<7).contains(day), (0..<24).contains(hour) { grid[day][hour] += cell["interactions"]?.intValue ?? 0 }
        }
        let scoringResult = try await scoring
        let bands = (scoringResult["bands"]?.arrayValue ?? []).map { band in
            (
                label: band["band"]?.stringValue ?? "", leads: band["leads"]?.intValue ?? 0,
                rate: band["conversion_rate"]?.doubleValue ?? 0, low: band["ci95_low"]?.doubleValue ?? 0,
                high: band["ci95_high"]?.doubleValue ?? 0
            )
        }
        let judged = bands.filter { $0.leads > 0 }
        let verdict =
            judged.count < 2
            ? "Not enough leads with outcomes in this period to compare bands."
            : scoringResult["higher_score_converts_better"]?.boolValue == true
                ? "Yes: conversion rises with the score band in this period."
                : "Not consistently: some higher bands convert less often here (see the intervals)."
        let roiResult = try await roi
        let roiRows: [[String: Any]] = (roiResult["sources"]?.arrayValue ?? []).map { row in
            let source = row["source"]?.stringValue ?? "unknown"
            return [
                "source": source, "sourceQuery": source.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "",
                "leads": Charts.number(row["leads"]?.intValue ?? 0), "conversions": Charts.number(row["conversions"]?.intValue ?? 0),
                "rate": percent(row["conversion_rate"]?.doubleValue ?? 0),
                "costPerLead": row["cost_per_lead"]?.doubleValue.map(money) ?? "–",
                "costPerConversion": row["cost_per_conversion"]?.doubleValue.map(money) ?? "–",
            ]
        }
        let flows: [[String: Any]] = (try await flow["flows"]?.arrayValue ?? []).prefix(12).map { row in
            [
                "source": row["source"]?.stringValue ?? "", "first": row["first_interaction_type"]?.stringValue ?? "",
                "outcome": row["outcome"]?.stringValue ?? "", "leads": Charts.number(row["leads"]?.intValue ?? 0),
            ]
        }
        let hotRows: [[String: Any]] = try await hot.map { lead in
            [
                "id": lead.id, "name": lead.name ?? "lead \(lead.id)", "procedure": lead.procedure ?? "", "score": lead.score,
                "engagement": lead.engagement, "heat": String(format: "%.1f", lead.heat),
            ]
        }
        let nonce = Self.nonce()
        let context: [String: Any] = [
            "rangeLabel": "Last \(span == 1 ? "24 hours" : "\(span) days")",
            "ranges": [1, 7, 30, 90, 365].map { ["days": $0, "label": $0 == 1 ? "24 h" : "\($0) d", "on": $0 == span] as [String: Any] },
            "kpis": kpis, "funnelChart": funnelChart, "dailyChart": Charts.columns(daily), "heatmapChart": Charts.heatmap(grid),
            "scoringChart": Charts.bands(bands), "scoringVerdict": verdict, "roi": roiRows,
            "costsConfigured": roiResult["costs_configured"]?.boolValue == true, "flows": flows, "hot": hotRows, "nonce": nonce,
        ]
        return page("dashboard", title: "Dashboard", context, signedIn: cookie, nav: "onDashboard", nonce: nonce)
    }

    @Sendable func leadList(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let cookie = try await signedIn(request) else { return redirectToLogin() }
        let query = request.queryDictionary
        var values: [String: Any] = ["f": query.filter { !$0.value.isEmpty }]
        var filter = LeadFilter()
        var status = HTTPResponse.Status.ok
        do {
            filter = try LeadFilter(query)
            let rows = try await leads.leads(filter, logger: context.logger)
            values["leads"] = rows.map { lead -> [String: Any] in
                [
                    "id": lead.id, "name": lead.name ?? "–", "contact": [lead.phone, lead.email].compactMap { $0 }.joined(separator: " · "),
                    "procedure": lead.procedure ?? "", "source": lead.source ?? "", "score": lead.score, "engagement": lead.engagement,
                    "heat": String(format: "%.1f", lead.heat), "status": lead.status, "created": Self.display(lead.createdAt),
                ]
            }
            values["summary"] = rows.isEmpty ? "No leads match." : "Showing \(rows.count) lead\(rows.count == 1 ? "" : "s")\(filter.sortByHeat ? ", hottest first" : ", newest first")"
            if rows.count == filter.limit, let last = rows.last, !filter.sortByHeat {
                let base = filter.queryString
                values["next"] = "/admin/leads?\(base)\(base.isEmpty ? "" : "&")before=\(last.id)"
            }
        } catch let error as APIError {
            values["error"] = error.message
            values["leads"] = [[String: Any]]()
            status = .unprocessableContent
        }
        func options(_ all: [String], _ selected: String?) -> [[String: Any]] { all.map { ["value": $0, "on": $0 == selected] } }
        values["types"] = options(InteractionType.allCases.map(\.rawValue), filter.type?.rawValue)
        values["sources"] = options(InteractionType.allCases.compactMap(\.leadSource), filter.source)
        values["engagements"] = options(LeadFilter.engagements, filter.engagement)
        values["statuses"] = options(LeadFilter.statuses, filter.status)
        values["heat"] = filter.sortByHeat
        values["query"] = filter.queryString
        if var shown = values["f"] as? [String: String] {
            // Date inputs want plain days.
            for key in ["from", "to"] { if let value = shown[key] { shown[key] = String(value.prefix(10)) } }
            values["f"] = shown
        }
        return page("leads", title: "Leads", values, signedIn: cookie, nav: "onLeads", status: status)
    }

    @Sendable func leadPage(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let cookie = try await signedIn(request) else { return redirectToLogin() }
        guard let id = Int64(context.parameters.get("id") ?? ""), let lead = try await leads.detail(id: id, logger: context.logger) else {
            return page("leads", title: "Not found", ["error": "There is no such lead.", "leads": [[String: Any]]()], signedIn: cookie, nav: "onLeads", status: .notFound)
        }
        let status = lead["status"]?.stringValue ?? "new"
        let values: [String: Any] = [
            "id": id, "name": lead["patient_name"]?.stringValue ?? "Lead \(id)", "score": lead["lead_score"]?.intValue ?? 0,
            "engagement": lead["engagement_level"]?.stringValue ?? "", "status": status,
            "source": lead["source"]?.stringValue ?? "", "procedure": lead["procedure_name"]?.stringValue ?? "",
            "phone": lead["mobile_number"]?.stringValue ?? "", "email": lead["email"]?.stringValue ?? "",
            "message": lead["message"]?.stringValue ?? "",
            "created": Self.display(lead["created_at"]), "lastSeen": Self.display(lead["last_interaction_at"]),
            "probability": lead["conversion_probability"]?.doubleValue.map { percent($0) } ?? "",
            "csrf": session.csrf(for: cookie),
            "outcomeChoices": OutcomeRecorder.statuses.map { ["value": $0, "on": $0 == status] as [String: Any] },
            "interactions": (lead["interactions"]?.arrayValue ?? []).map { row -> [String: Any] in
                [
                    "at": Self.display(row["occurred_at"]), "type": row["interaction_type"]?.stringValue ?? "",
                    "page": row["source_page"]?.stringValue ?? "", "score": row["score"]?.intValue ?? 0,
                ]
            },
            "history": (lead["score_history"]?.arrayValue ?? []).map { row -> [String: Any] in
                let rules = (row["breakdown"]?.arrayValue ?? []).map { line in
                    let points = line["points"]?.intValue ?? 0
                    return "\(line["rule"]?.stringValue ?? "") \(points >= 0 ? "+" : "")\(points)"
                }
                return ["at": Self.display(row["at"]), "rules": rules.joined(separator: ", "), "score": row["lead_score"]?.intValue ?? 0]
            },
            "prompts": (lead["prompts"]?.arrayValue ?? []).map { row -> [String: Any] in
                [
                    "variant": row["variant"]?.stringValue ?? "", "intent": row["intent_score"]?.intValue ?? 0,
                    "reason": row["reason"]?.stringValue ?? "", "status": row["status"]?.stringValue ?? "", "at": Self.display(row["created_at"]),
                ]
            },
            "alerts": (lead["alerts"]?.arrayValue ?? []).map { row -> [String: Any] in
                ["kind": row["kind"]?.stringValue ?? "", "at": Self.display(row["created_at"])]
            },
            "outcomes": (lead["outcomes"]?.arrayValue ?? []).map { row -> [String: Any] in
                ["status": row["status"]?.stringValue ?? "", "at": Self.display(row["occurred_at"]), "via": row["reported_via"]?.stringValue ?? ""]
            },
        ]
        return page("lead", title: values["name"] as? String ?? "Lead", values, signedIn: cookie, nav: "onLeads")
    }

    @Sendable func recordOutcome(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let fields = try await form(request)
        guard try await signedIn(request, form: fields) != nil else { return redirectToLogin() }
        guard let id = Int64(context.parameters.get("id") ?? "") else { return redirectToLogin() }
        guard let status = fields["status"], OutcomeRecorder.statuses.contains(status) else {
            return Response(status: .unprocessableContent, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "unknown outcome")))
        }
        _ = try await leads.outcomes.record(leadID: id, status: status, occurredAt: Date(), via: .api, messageID: nil, logger: context.logger)
        return .redirect(to: "/admin/leads/\(id)", type: .normal)
    }

    // MARK: - Rendering

    private func page(
        _ template: String,
        title: String,
        _ values: [String: Any],
        signedIn cookie: String?,
        nav: String? = nil,
        nonce: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let content = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content, "signedIn": cookie != nil]
        if let cookie { layout["csrf"] = session.csrf(for: cookie) }
        if let nav { layout[nav] = true }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        let scripts = nonce.map { "'nonce-\($0)'" } ?? "'none'"
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; script-src \(scripts); style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }

    private static func nonce() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// `2026-11-26 09:30 UTC` from a timestamp or its JSON text.
    static func display(_ value: JSONValue?) -> String {
        guard let text = value?.stringValue, let date = JSONCoding.parseTimestamp(text) else { return "" }
        return display(date)
    }

    static func display(_ date: Date) -> String {
        let text = JSONCoding.formatTimestamp(date)
        return String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}

private func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }

private func money(_ value: Double) -> String { Charts.number(Int(value.rounded())) }

extension JSONValue {
    var intValue: Int? {
        switch self {
        case .int(let number): Int(number)
        case .double(let number): Int(number)
        default: nil
        }
    }

    var doubleValue: Double? {
        switch self {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }
}
