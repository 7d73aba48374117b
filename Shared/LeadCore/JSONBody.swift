import Foundation

/// Decodes request bodies into `JSONValue`, refusing pathological nesting before the decoder recurses.
package enum JSONBody {
    package static let maxDepth = 64

    package enum Failure: Error, Equatable {
        case malformed(String)
        case tooDeep
    }

    package static func decode(_ bytes: some Collection<UInt8>) throws(Failure) -> JSONValue {
        guard nestingDepth(bytes) <= maxDepth else { throw .tooDeep }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw .malformed(describe(error))
        }
    }

    /// Deepest `[`/`{` nesting outside strings.
    static func nestingDepth(_ bytes: some Collection<UInt8>) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        }
        return "the body is not valid JSON"
    }
}
