import Foundation
import Hummingbird
import HummingbirdTesting
import LeadService
import Testing

/// An error no handler mapped becomes a response in the contract's shape: 500, or 503 with `Retry-After`
/// when the failure is transient; errors that carry their own response pass through unchanged.
@Suite struct UnexpectedErrorMiddlewareTests {
    struct Broken: Error {}

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: UnexpectedErrorMiddleware())
        router.get("broken") { _, _ -> String in throw Broken() }
        router.get("cancelled") { _, _ -> String in throw CancellationError() }
        router.get("mapped") { _, _ -> String in throw APIError(.notFound, code: "not_found", "no such thing") }
        router.get("fine") { _, _ in "ok" }
        return Application(router: router)
    }

    func errorCode(_ body: ByteBuffer) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any]
        return (object?["error"] as? [String: Any])?["code"] as? String
    }

    @Test func unmappedErrorsGetTheContractShape() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/broken", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(errorCode(response.body) == "internal_error")
                #expect(response.headers[.retryAfter] == nil)
            }
            try await client.execute(uri: "/cancelled", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(errorCode(response.body) == "unavailable")
                #expect(response.headers[.retryAfter] == "1")
            }
            try await client.execute(uri: "/mapped", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(errorCode(response.body) == "not_found")
            }
            try await client.execute(uri: "/fine", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
        }
    }
}
