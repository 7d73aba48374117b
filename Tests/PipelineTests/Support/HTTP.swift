import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A small HTTP client for tests.
enum HTTP {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func get(_ url: String, headers: [(String, String)] = []) async throws -> Response {
        try await send(url, method: .GET, headers: headers, body: nil)
    }

    static func post(
        _ url: String,
        body: Data?,
        headers: [(String, String)] = [("Content-Type", "application/json")]
    ) async throws -> Response {
        try await send(url, method: .POST, headers: headers, body: body)
    }

    static func postJSON(_ url: String, _ object: Any, key: String? = "dev-ingest-key") async throws -> Response {
        var headers = [("Content-Type", "application/json")]
        if let key { headers.append(("Authorization", "Bearer \(key)")) }
        return try await post(url, body: try JSONSerialization.data(withJSONObject: object), headers: headers)
    }

    static func send(_ url: String, method: HTTPMethod, headers: [(String, String)], body: Data?) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
        let buffer = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Response(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
    }
}
