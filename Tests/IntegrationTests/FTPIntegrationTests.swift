import Foundation
import InetCore
import InetFTP
import InetSimple
import NIOCore
import NIOPosix
import XCTest

/// The FTP service in a real host on loopback, driven by InetKit's own client.
final class FTPIntegrationTests: XCTestCase {
    func testClientUploadsListsDownloadsAndDeletes() async throws {
        let root = NSTemporaryDirectory() + "inetkit-ftp-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/public", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/carol", withIntermediateDirectories: true)
        try "public file\n".write(toFile: root + "/public/readme.txt", atomically: true, encoding: .utf8)
        let catalog = SimpleServices.catalog + [FTPService.descriptor]
        let yaml = """
            data_dir: \(root)
            services:
              ftp: { users: [{ name: carol, password: pw, home: \(root)/carol, write: true }] }
            """
        let host = try await HostHarness.start(catalog: catalog, yaml: yaml, only: ["ftp"])
        let port = host.port(of: "ftp", transport: .tcp)!

        let anonymous = try XCTUnwrap(FTPURL("ftp://127.0.0.1:\(port)/readme.txt", defaultPort: 21))
        let text = try await FTPClientSession.session(anonymous) { session in
            var bytes = ByteBuffer()
            try await session.download("RETR /readme.txt") { chunk in
                var chunk = chunk
                bytes.writeBuffer(&chunk)
            }
            return String(buffer: bytes)
        }
        XCTAssertEqual(text, "public file\n")

        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for active in [false, true] {
            let user = try XCTUnwrap(FTPURL("ftp://carol:pw@127.0.0.1:\(port)/", defaultPort: 21))
            let name = active ? "active.bin" : "passive.bin"
            let listing = try await FTPClientSession.session(user, active: active) { session in
                var remaining = payload[...]
                try await session.upload("STOR \(name)") {
                    guard !remaining.isEmpty else { return nil }
                    let chunk = remaining.prefix(65_536)
                    remaining = remaining.dropFirst(chunk.count)
                    return ByteBuffer(bytes: chunk)
                }
                var names = ByteBuffer()
                try await session.download("NLST") { chunk in
                    var chunk = chunk
                    names.writeBuffer(&chunk)
                }
                var back = ByteBuffer()
                try await session.download("RETR \(name)") { chunk in
                    var chunk = chunk
                    back.writeBuffer(&chunk)
                }
                XCTAssertEqual(Array(back.readableBytesView), payload, "round trip, active: \(active)")
                _ = try await session.command("DELE \(name)", expect: 2)
                return String(buffer: names)
            }
            XCTAssertTrue(listing.contains(name), listing)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(root)/carol/\(name)"))
        }
        await host.shutdown(grace: 1)
    }
}
