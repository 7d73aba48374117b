extension StringProtocol {
    /// Without leading and trailing whitespace and newlines; cheaper than Foundation's
    /// `trimmingCharacters(in:)`, which bridges through NSString on Linux.
    package var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}
