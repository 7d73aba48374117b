/// Decodes request bodies into `JSONValue` with the strict parser (depth-limited, so pathological nesting
/// never reaches a recursion limit).
package enum JSONBody {
    package static let maxDepth = 64

    package enum Failure: Error, Equatable {
        case malformed(String)
        case tooDeep
    }

    package static func decode(_ bytes: some Collection<UInt8>) throws(Failure) -> JSONValue {
        do {
            return try JSONParser.parse(bytes, maxDepth: maxDepth)
        } catch {
            throw error.tooDeep ? .tooDeep : .malformed(error.description)
        }
    }
}
