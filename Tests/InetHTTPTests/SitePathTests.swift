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

    func testRangeSatisfiability() {
        XCTAssertTrue(SiteGuard<BasicContextStub>.satisfiable("bytes=0-4", size: 6))
        XCTAssertTrue(SiteGuard<BasicContextStub>.satisfiable("bytes=5-", size: 6))
        XCTAssertFalse(SiteGuard<BasicContextStub>.satisfiable("bytes=6-", size: 6))
        XCTAssertFalse(SiteGuard<BasicContextStub>.satisfiable("bytes=100-200", size: 6))
        XCTAssertFalse(SiteGuard<BasicContextStub>.satisfiable("bytes=-0", size: 6))
        XCTAssertFalse(SiteGuard<BasicContextStub>.satisfiable("bytes=0-", size: 0))
        XCTAssertTrue(SiteGuard<BasicContextStub>.satisfiable("bytes=-3", size: 6))
        XCTAssertEqual(SiteGuard<BasicContextStub>.suffixLength("bytes=-3"), 3)
        XCTAssertNil(SiteGuard<BasicContextStub>.suffixLength("bytes=1-3"))
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
}

import Hummingbird
typealias BasicContextStub = BasicRequestContext

final class StaticFastPathTests: XCTestCase {
    func testETagMatchesFileMiddlewaresForm() {
        // FileMiddleware's weak ETag for a 273-byte file modified at 1796022985 s, as served.
        XCTAssertEqual(StaticFastPath.eTag(modifiedSeconds: 1_796_022_985, size: 273), "W/\"313739363032323938352e302d323733\"")
    }
}
