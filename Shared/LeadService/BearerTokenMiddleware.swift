import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <token>`; anything else is a 401 in the contract's error shape.
package struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    package init(token: String) {
        self.token = token
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers.value(.authorization) else {
            throw APIError(.unauthorized, code: "unauthorized", "a bearer token is required")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", constantTimeEquals(String(parts[1]), token) else {
            throw APIError(.unauthorized, code: "unauthorized", "the bearer token is not valid")
        }
        return try await next(request, context)
    }
}
