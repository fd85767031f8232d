import Foundation
@testable import InetHTTP
import InetCore
import XCTest

final class SitePathTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        let base = NSTemporaryDirectory() + "inetkit-site-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/site/docs", withIntermediateDirectories: true)
        try "hi".write(toFile: base + "/site/docs/a.txt", atomically: true, encoding: .utf8)
        try "secret".write(toFile: base + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: base + "/site/out", withDestinationPath: base + "/secret.txt")
        try FileManager.default.createSymbolicLink(atPath: base + "/site/outdir", withDestinationPath: base)
        try FileManager.default.createSymbolicLink(atPath: base + "/site/inside", withDestinationPath: base + "/site/docs/a.txt")
        root = SitePath.realPath(base + "/site")!
    }

    private func outcome(_ raw: String) -> SitePath.Outcome {
        switch SitePath.check(rawPath: Substring(raw)) {
        case .failure(let outcome): return outcome
        case .success(let decoded): return SitePath.resolve(decoded, root: root)
        }
    }

    func testFilesAndFoldersInsideRootAreFound() {
        XCTAssertEqual(outcome("/docs/a.txt"), .found(path: root + "/docs/a.txt", isDirectory: false))
        XCTAssertEqual(outcome("/docs/"), .found(path: root + "/docs", isDirectory: true))
        XCTAssertEqual(outcome("/"), .found(path: root, isDirectory: true))
        XCTAssertEqual(outcome("/docs%2Fa.txt"), .found(path: root + "/docs/a.txt", isDirectory: false), "%2f is a slash, as in nginx")
        XCTAssertEqual(outcome("/inside"), .found(path: root + "/docs/a.txt", isDirectory: false), "a symlink that stays inside is fine")
        XCTAssertEqual(outcome("//docs//a.txt"), .found(path: root + "/docs/a.txt", isDirectory: false))
    }

    func testEveryEscapeIsForbiddenOrNotFound() {
        for raw in ["/../secret.txt", "/docs/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/docs/..%2f..%2fsecret.txt", "/./docs/a.txt"] {
            guard case .forbidden = outcome(raw) else { return XCTFail("\(raw) must be forbidden, got \(outcome(raw))") }
        }
        for raw in ["/docs%5c..%5csecret.txt", "/docs\\a.txt", "/a%00b", "/a%0d%0aSet-Cookie:x", "/%7f"] {
            guard case .forbidden = outcome(raw) else { return XCTFail("\(raw) must be forbidden, got \(outcome(raw))") }
        }
        XCTAssertEqual(outcome("/out"), .notFound, "symlink to a file outside the root")
        XCTAssertEqual(outcome("/outdir/secret.txt"), .notFound, "symlink to a folder outside the root")
        XCTAssertEqual(outcome("/etc/passwd"), .notFound, "absolute paths are inside the root")
        XCTAssertEqual(outcome("/missing"), .notFound)
    }

    func testMalformedTargetsAreBadRequests() {
        guard case .badRequest = outcome("/%zz") else { return XCTFail() }
        guard case .badRequest = outcome("/%4") else { return XCTFail() }
        guard case .badRequest = outcome("/%ff%fe") else { return XCTFail("not UTF-8") }
        guard case .badRequest = outcome("relative") else { return XCTFail() }
        guard case .badRequest = outcome("http://example.test/") else { return XCTFail() }
    }

    func testRangeDecisions() {
        XCTAssertEqual(ByteRange.decide("bytes=0-4", size: 6), .satisfiable(0...4))
        XCTAssertEqual(ByteRange.decide("bytes=5-", size: 6), .satisfiable(5...5))
        XCTAssertEqual(ByteRange.decide("bytes=2-100", size: 6), .satisfiable(2...5), "last-pos past the end is clamped")
        XCTAssertEqual(ByteRange.decide("bytes=6-", size: 6), .unsatisfiable)
        XCTAssertEqual(ByteRange.decide("bytes=100-200", size: 6), .unsatisfiable)
        XCTAssertEqual(ByteRange.decide("bytes=-0", size: 6), .unsatisfiable)
        XCTAssertEqual(ByteRange.decide("bytes=0-", size: 0), .unsatisfiable)
        XCTAssertEqual(ByteRange.decide("bytes=-3", size: 6), .satisfiable(3...5), "a suffix is the last N bytes (RFC 9110)")
        XCTAssertEqual(ByteRange.decide("bytes=-30", size: 6), .satisfiable(0...5))
        XCTAssertEqual(ByteRange.decide(" BYTES = 1-2 ", size: 6), .ignore, "no space inside the unit")
        XCTAssertEqual(ByteRange.decide("Bytes=1-2 , ", size: 6), .satisfiable(1...2), "unit case-insensitive, empty list elements")
        XCTAssertEqual(ByteRange.decide("bytes=0-1,3-4", size: 6), .ignore, "several ranges: the whole file")
        XCTAssertEqual(ByteRange.decide("items=0-1", size: 6), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=3-1", size: 6), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=\u{0663}-", size: 6), .ignore, "ASCII digits only")
        XCTAssertEqual(ByteRange.decide("bytes=99999999999999999999999-", size: 6), .unsatisfiable, "a huge position saturates")
        XCTAssertEqual(ByteRange.decide("bytes=1-99999999999999999999999", size: 6), .satisfiable(1...5))
        XCTAssertEqual(ByteRange.decide("bytes=-99999999999999999999999", size: 6), .satisfiable(0...5))
    }

    /// The input that trapped the whole host (issue 11): a suffix of `- -9223372036854775808`.
    func testRangeWithSignedSuffixIsIgnored() {
        XCTAssertEqual(ByteRange.decide("bytes=- -9223372036854775808", size: 1000), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=- -5", size: 1000), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=-+5", size: 1000), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=--5", size: 1000), .ignore)
        XCTAssertEqual(ByteRange.decide("bytes=-9223372036854775808", size: 1000), .satisfiable(0...999))
        XCTAssertEqual(ByteRange.decide("bytes=9223372036854775807-", size: Int.max), .unsatisfiable)
    }

    func testListingEscapesNamesAndLinksFoldersWithSlash() throws {
        let folder = NSTemporaryDirectory() + "inetkit-list-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/sub dir", withIntermediateDirectories: true)
        try "x".write(toFile: folder + "/<b>.txt", atomically: true, encoding: .utf8)
        try "x".write(toFile: folder + "/.hidden", atomically: true, encoding: .utf8)
        let entries = try XCTUnwrap(DirectoryListing.entries(of: folder))
        XCTAssertEqual(entries.map(\.name), ["sub dir", "<b>.txt"], "folders first, dot files hidden")
        let html = DirectoryListing.html(path: "/x/", entries: entries)
        XCTAssertTrue(html.contains("<a href=\"sub%20dir/\">sub dir/</a>"), html)
        XCTAssertTrue(html.contains("&lt;b&gt;.txt"))
        XCTAssertFalse(html.contains("<b>.txt"))
        XCTAssertTrue(html.contains("<a href=\"../\">"))
    }

    func testAccessLogFieldsCannotBeForged() {
        XCTAssertEqual(AccessLog.clean("a\"b\nc\\"), "a\\x22b\\xAc\\x5C")
    }

    func testTheDashboardTokenIsMaskedInLogsAndEvents() {
        XCTAssertEqual(AccessLog.masked("/_inetkit/events?token=abc&since=4"), "/_inetkit/events?token=****&since=4")
        XCTAssertEqual(AccessLog.masked("/x?since=4&token=abc"), "/x?since=4&token=****")
        XCTAssertEqual(AccessLog.masked("/x?mytoken=abc"), "/x?mytoken=abc")
        XCTAssertEqual(AccessLog.masked("/token=abc"), "/token=abc")
        XCTAssertEqual(AccessLog.masked("/plain"), "/plain")
        XCTAssertEqual(AccessLog.masked("/x?"), "/x?")
    }
}

import Hummingbird
typealias BasicContextStub = BasicRequestContext

final class StaticFastPathTests: XCTestCase {
    func testETagMatchesFileMiddlewaresForm() {
        // FileMiddleware's weak ETag for a 273-byte file modified at 1796022985 s, as served.
        XCTAssertEqual(StaticFastPath.eTag(modifiedSeconds: 1_796_022_985, size: 273), "W/\"313739363032323938352e302d323733\"")
    }
}
