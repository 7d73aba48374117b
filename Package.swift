// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "lead-pipeline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lead-ingest", targets: ["LeadIngest"]),
        .executable(name: "lead-scorer", targets: ["LeadScorer"]),
        .executable(name: "lead-conversion", targets: ["LeadConversion"]),
        .executable(name: "lead-alerts", targets: ["LeadAlerts"]),
        .executable(name: "lead-admin", targets: ["LeadAdmin"]),
        .executable(name: "leadctl", targets: ["LeadCtl"]),
        .executable(name: "lead-bench", targets: ["LeadBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CRabbitMQ",
            path: "Shared/CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/AMQP",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LeadCore",
            path: "Shared/LeadCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LeadStore",
            dependencies: [
                "LeadCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/LeadStore",
            resources: [.embedInCode("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LeadService",
            dependencies: [
                "AMQP", "LeadCore", "LeadStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/LeadService",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadIngest",
            dependencies: ["LeadService", .product(name: "Crypto", package: "swift-crypto")],
            path: "Services/Ingest",
            resources: [.embedInCode("Web")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadScorer",
            dependencies: ["LeadService", .product(name: "Metrics", package: "swift-metrics")],
            path: "Services/Scorer",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadConversion",
            dependencies: ["LeadService"],
            path: "Services/Conversion",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadAlerts",
            dependencies: [
                "LeadService",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Services/Alerts",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadAdmin",
            dependencies: [
                "LeadService",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Services/Admin",
            resources: [.embedInCode("Templates")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadCtl",
            dependencies: [
                "LeadService", "AMQP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Services/LeadCtl",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "LeadBench",
            dependencies: [
                "LeadService", "AMQP", "LeadCore", "LeadStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Services/Bench",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UnitTests",
            dependencies: [
                "LeadCore", "LeadStore", "AMQP", "LeadService",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/UnitTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "LeadService", "LeadCore", "LeadStore", "AMQP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/PipelineTests",
            swiftSettings: swiftSettings
        ),
    ]
)
