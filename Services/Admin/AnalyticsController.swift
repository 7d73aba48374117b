import Hummingbird
import LeadCore
import LeadService

/// `GET /v1/analytics/{funnel,heatmap,flow,scoring,roi}?from=&to=`.
struct AnalyticsController: Sendable {
    let analytics: Analytics

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("analytics/funnel") { request, context -> Response in
            let query = request.queryDictionary
            return .json(try await analytics.funnel(try Analytics.Range(query), period: query["period"] ?? "day", logger: context.logger))
        }
        group.get("analytics/heatmap") { request, context -> Response in
            .json(try await analytics.heatmap(try Analytics.Range(request.queryDictionary), logger: context.logger))
        }
        group.get("analytics/flow") { request, context -> Response in
            .json(try await analytics.flow(try Analytics.Range(request.queryDictionary), logger: context.logger))
        }
        group.get("analytics/scoring") { request, context -> Response in
            .json(try await analytics.scoring(try Analytics.Range(request.queryDictionary), logger: context.logger))
        }
        group.get("analytics/roi") { request, context -> Response in
            .json(try await analytics.roi(try Analytics.Range(request.queryDictionary), logger: context.logger))
        }
    }
}
