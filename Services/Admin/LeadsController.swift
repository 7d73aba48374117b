import Foundation
import Hummingbird
import LeadService
import Logging
import PostgresNIO

/// The lead API of lead-admin.
struct LeadsController: Sendable {
    let client: PostgresClient

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("leads", use: list)
    }

    struct LeadSummary: Encodable {
        var id: Int64
        var patientName: String?
        var procedureName: String?
        var source: String?
        var leadScore: Int
        var engagementLevel: String
        var status: String
        var createdAt: Date

        enum CodingKeys: String, CodingKey {
            case id, patientName = "patient_name", procedureName = "procedure_name", source, leadScore = "lead_score"
            case engagementLevel = "engagement_level", status, createdAt = "created_at"
        }
    }

    struct LeadPage: Encodable {
        var leads: [LeadSummary]
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let limit = min(max(request.uri.queryParameters.get("limit", as: Int.self) ?? 50, 1), 500)
        let rows = try await client.query(
            """
            SELECT id, patient_name, procedure_name, source, lead_score, engagement_level, status, created_at
            FROM leads ORDER BY id DESC LIMIT \(limit)
            """,
            logger: context.logger
        )
        var leads: [LeadSummary] = []
        for try await (id, name, procedure, source, score, engagement, status, createdAt) in rows.decode(
            (Int64, String?, String?, String?, Int, String, String, Date).self
        ) {
            leads.append(.init(id: id, patientName: name, procedureName: procedure, source: source, leadScore: score, engagementLevel: engagement, status: status, createdAt: createdAt))
        }
        return try .json(LeadPage(leads: leads))
    }
}
