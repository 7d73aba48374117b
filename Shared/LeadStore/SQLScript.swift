/// Splits a SQL script into statements. postgres-nio speaks only the extended protocol, which takes one
/// statement at a time, so migrations are split on top-level `;` (outside quotes, `$tag$` bodies and comments).
package enum SQLScript {
    package static func statements(_ script: String) -> [String] {
        let characters = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0
        var dollarTag: [Unicode.Scalar]?

        func peek(_ offset: Int) -> Unicode.Scalar? {
            index + offset < characters.count ? characters[index + offset] : nil
        }

        func flush() {
            let statement = String(current).trimmingWhitespace
            if !statement.isEmpty, !isOnlyComments(statement) { statements.append(statement) }
            current = String.UnicodeScalarView()
        }

        while index < characters.count {
            let character = characters[index]
            if let tag = dollarTag {
                if character == "$", Array(characters[index..<min(characters.count, index + tag.count)]) == tag {
                    current.append(contentsOf: tag)
                    index += tag.count
                    dollarTag = nil
                } else {
                    current.append(character)
                    index += 1
                }
                continue
            }
            switch character {
            case "'", "\"":
                // Quoted literal or identifier; a doubled quote stays inside.
                current.append(character)
                index += 1
                while index < characters.count {
                    current.append(characters[index])
                    if characters[index] == character {
                        if peek(1) == character {
                            current.append(characters[index + 1])
                            index += 2
                            continue
                        }
                        index += 1
                        break
                    }
                    index += 1
                }
            case "-" where peek(1) == "-":
                while index < characters.count, characters[index] != "\n" {
                    current.append(characters[index])
                    index += 1
                }
            case "/" where peek(1) == "*":
                while index < characters.count, !(characters[index] == "*" && peek(1) == "/") {
                    current.append(characters[index])
                    index += 1
                }
                if index < characters.count {
                    current.append(contentsOf: ["*", "/"])
                    index += 2
                }
            case "$":
                // `$tag$` or `$$` opens a dollar-quoted body; `$1` is a parameter.
                var end = index + 1
                while end < characters.count,
                    characters[end] == "_" || characters[end].properties.isAlphabetic
                        || (end > index + 1 && ("0"..."9").contains(characters[end]))
                {
                    end += 1
                }
                if end < characters.count, characters[end] == "$" {
                    let tag = Array(characters[index...end])
                    current.append(contentsOf: tag)
                    index = end + 1
                    dollarTag = tag
                } else {
                    current.append(character)
                    index += 1
                }
            case ";":
                flush()
                index += 1
            default:
                current.append(character)
                index += 1
            }
        }
        flush()
        return statements
    }

    private static func isOnlyComments(_ statement: String) -> Bool {
        statement.split(separator: "\n").allSatisfy { $0.trimmingWhitespace.isEmpty || $0.trimmingWhitespace.hasPrefix("--") }
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
