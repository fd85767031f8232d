// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// InetHTTP uses stat(2) and friends, which swift-crypto's and Foundation's module maps also
/// declare; with MemberImportVisibility the compiler then asks for CoreFoundation, which is
/// not importable on Linux. Leave that one feature off there.
let httpSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "InetKit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "inetkit", targets: ["inetkit"]),
        .library(name: "InetCore", targets: ["InetCore"]),
        .library(name: "InetSimple", targets: ["InetSimple"]),
        .library(name: "InetHTTP", targets: ["InetHTTP"]),
        .library(name: "InetDNS", targets: ["InetDNS"]),
        .library(name: "InetMail", targets: ["InetMail"]),
        .library(name: "InetSNMP", targets: ["InetSNMP"]),
        .library(name: "InetFTP", targets: ["InetFTP"]),
        .library(name: "InetNTP", targets: ["InetNTP"]),
        .library(name: "InetWho", targets: ["InetWho"]),
        .library(name: "InetTFTP", targets: ["InetTFTP"]),
        .library(name: "InetSyslog", targets: ["InetSyslog"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // fork/exec with inherited sockets (systemd's convention), memfd and atomics on
        // shared memory: the few calls Swift cannot make safely between fork and exec.
        .target(name: "CInetSupport"),
        .target(
            name: "InetCore",
            dependencies: [
                "CInetSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetSimple",
            dependencies: [
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetTLS",
            dependencies: [
                "InetCore",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: httpSwiftSettings
        ),
        .target(
            name: "InetLine",
            dependencies: [
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetMail",
            dependencies: [
                "InetCore",
                "InetLine",
                "InetTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetMailTests",
            dependencies: [
                "InetMail",
                "InetLine",
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetFTP",
            dependencies: [
                "InetCore",
                "InetLine",
                "InetTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetFTPTests",
            dependencies: [
                "InetFTP", "InetCore", "InetLine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetSNMP",
            dependencies: [
                "InetCore",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetSNMPTests",
            dependencies: ["InetSNMP", "InetCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "SwiftASN1", package: "swift-asn1")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetHTTP",
            dependencies: [
                "InetCore",
                "InetTLS",
                "InetMail",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The dashboard's sources; DashboardAssets.swift embeds them (scripts/embed-dashboard).
            exclude: ["Dashboard/dashboard.js", "Dashboard/dashboard.css"],
            swiftSettings: httpSwiftSettings
        ),
        .target(
            name: "InetNTP",
            dependencies: [
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetWho",
            dependencies: [
                "InetCore",
                "InetLine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetTFTP",
            dependencies: [
                "InetCore",
                "InetTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetSyslog",
            dependencies: [
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetSyslogTests",
            dependencies: ["InetSyslog", "InetCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetTFTPTests",
            dependencies: ["InetTFTP", "InetCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetNTPTests",
            dependencies: ["InetNTP", "InetCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetWhoTests",
            dependencies: [
                "InetWho", "InetCore", "InetLine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "InetDNS",
            dependencies: [
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetDNSTests",
            dependencies: ["InetDNS"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "inetkit",
            dependencies: [
                "InetCore",
                "InetSimple",
                "InetHTTP",
                "InetDNS",
                "InetMail",
                "InetSNMP",
                "InetFTP",
                "InetLine",
                "InetNTP",
                "InetWho",
                "InetTLS",
                "InetTFTP",
                "InetSyslog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetCoreTests",
            dependencies: [
                "InetCore",
                "CInetSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetSimpleTests",
            dependencies: [
                "InetSimple",
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InetHTTPTests",
            dependencies: [
                "InetHTTP",
                "InetCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The fuzz targets' harnesses (Fuzz/): each takes bytes as a peer or a file would send
        // them and checks what must hold. Replayed over the seed corpus and every crash ever
        // found by FuzzRegressionTests in the ordinary test run; driven by libFuzzer in
        // `inetkit-fuzz`, which exists only when the package is built for fuzzing (below).
        .target(
            name: "InetFuzzHarness",
            dependencies: [
                "InetCore", "InetSimple", "InetHTTP", "InetDNS", "InetMail", "InetSNMP", "InetFTP", "InetLine", "InetNTP", "InetWho", "InetTFTP", "InetSyslog",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Fuzz/Sources/InetFuzzHarness",
            swiftSettings: httpSwiftSettings
        ),
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["InetFuzzHarness"],
            path: "Fuzz/Tests/FuzzRegressionTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "InetCore",
                "InetSimple",
                "InetHTTP",
                "InetDNS",
                "InetMail",
                "InetSNMP",
                "InetFTP",
                "InetLine",
                "InetNTP",
                "InetWho",
                "InetTLS",
                "InetTFTP",
                "InetSyslog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// `INETKIT_FUZZ=1 swift build --scratch-path .build-fuzz --product inetkit-fuzz` (what
// scripts/fuzz runs): InetKit's own modules are built with libFuzzer's coverage and
// AddressSanitizer, their dependencies as usual, and the libFuzzer driver is added. An
// ordinary build never sees any of it.
if Context.environment["INETKIT_FUZZ"] != nil {
    let sanitizers: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]
    for target in package.targets where target.type == .regular {
        target.swiftSettings = (target.swiftSettings ?? []) + sanitizers
    }
    package.targets += [
        .target(name: "CFuzzerDriver", path: "Fuzz/Sources/CFuzzerDriver"),
        .executableTarget(
            name: "inetkit-fuzz",
            dependencies: ["InetFuzzHarness", "CFuzzerDriver"],
            path: "Fuzz/Sources/inetkit-fuzz",
            swiftSettings: swiftSettings + sanitizers,
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        ),
    ]
    package.products += [.executable(name: "inetkit-fuzz", targets: ["inetkit-fuzz"])]
}
