import PostgresNIO

/// Builds a statement whose values are all bound parameters (`$1`, `$2`, ...), for queries whose shape depends
/// on the request (optional filters). Only the fixed SQL fragments written here are spliced in.
struct SQLBuilder {
    private(set) var sql = ""
    private(set) var binds = PostgresBindings()

    mutating func append(_ fragment: String) {
        sql += fragment
    }

    /// Appends `$n` for `value`.
    mutating func bind(_ value: some PostgresThrowingDynamicTypeEncodable) throws {
        try binds.append(value)
        sql += "$\(binds.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}
