import XCTest
@testable import InetFTP

final class FTPPathTests: XCTestCase {
    var base: String!

    override func setUpWithError() throws {
        base = "/tmp/inetkit-ftp-path-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(base, 0o755)
        for folder in ["root", "root/docs", "root/docs/deep", "outside"] { mkdir(base + "/" + folder, 0o755) }
        FileManagerLite.write("secret", to: base + "/outside/secret.txt")
        FileManagerLite.write("hello", to: base + "/root/docs/a.txt")
        symlink(base + "/outside", base + "/root/escape")
        symlink(base + "/outside/secret.txt", base + "/root/secret-link")
        symlink(base + "/root/docs/a.txt", base + "/root/inside-link")
        symlink(base + "/nowhere", base + "/root/dangling")
    }

    override func tearDown() {
        _ = try? FileManagerLite.removeTree(base)
    }

    func testNormalisesInsideTheRoot() throws {
        var files = try XCTUnwrap(FTPFileSystem(root: base + "/root"))
        XCTAssertEqual(try files.virtualPath("docs/../docs/./a.txt"), "/docs/a.txt")
        XCTAssertEqual(try files.virtualPath("../../../etc/passwd"), "/etc/passwd", "`..` stops at the root")
        XCTAssertEqual(try files.virtualPath("/"), "/")
        files.current = "/docs"
        XCTAssertEqual(try files.virtualPath("a.txt"), "/docs/a.txt")
        XCTAssertEqual(try files.virtualPath(".."), "/")
        XCTAssertEqual(try files.existing("a.txt").real, base + "/root/docs/a.txt")
        XCTAssertEqual(try files.existing("/inside-link").virtual, "/inside-link", "a link inside the root is fine")
    }

    func testEveryEscapeIsRefused() throws {
        let files = try XCTUnwrap(FTPFileSystem(root: base + "/root"))
        XCTAssertThrowsError(try files.existing("../outside/secret.txt")) { XCTAssertEqual($0 as? FTPPathError, .notFound) }
        XCTAssertThrowsError(try files.existing("escape/secret.txt")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.existing("escape")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.existing("secret-link")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.existing("dangling")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.creatable("escape/new.txt")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.creatable("secret-link")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.existing("a\u{0}b")) { XCTAssertEqual($0 as? FTPPathError, .badCharacters) }
        XCTAssertThrowsError(try files.creatable("x\r\nDELE y")) { XCTAssertEqual($0 as? FTPPathError, .badCharacters) }
        XCTAssertThrowsError(try files.creatable("/")) { XCTAssertEqual($0 as? FTPPathError, .outside) }
        XCTAssertThrowsError(try files.creatable("missing/new.txt")) { XCTAssertEqual($0 as? FTPPathError, .notFound) }
        XCTAssertEqual(try files.creatable("docs/new.txt").real, base + "/root/docs/new.txt")
    }

    func testListingFormats() throws {
        let entry = FTPEntry(name: "a.txt", isDirectory: false, size: 1234, modified: 1_796_000_000, mode: 0o100644, links: 1)
        XCTAssertEqual(entry.longFormat(now: 1_796_000_100), "-rw-r--r--    1 ftp      ftp              1234 Nov 30 00:53 a.txt")
        XCTAssertEqual(entry.longFormat(now: 1_796_000_000 + 400 * 86_400), "-rw-r--r--    1 ftp      ftp              1234 Nov 30  2026 a.txt")
        XCTAssertEqual(entry.facts(writable: false), "type=file;size=1234;modify=20261130005320;perm=r; a.txt")
        let folder = FTPEntry(name: "docs", isDirectory: true, size: 4096, modified: 0, mode: 0o040755, links: 3)
        XCTAssertEqual(folder.facts(writable: true), "type=dir;modify=19700101000000;perm=elcmfp; docs")
        XCTAssertTrue(folder.longFormat(now: 0).hasPrefix("drwxr-xr-x    3 ftp"))
        XCTAssertEqual("say \"hi\"".replacingQuotes, "say \"\"hi\"\"")
        let listed = try XCTUnwrap(FTPEntry.list(base + "/root"))
        XCTAssertEqual(listed.map(\.name), ["dangling", "docs", "escape", "inside-link", "secret-link"].filter { name in
            listed.contains { $0.name == name }
        })
        XCTAssertTrue(listed.contains { $0.name == "docs" && $0.isDirectory })
    }
}

enum FileManagerLite {
    static func write(_ text: String, to path: String) {
        guard let file = fopen(path, "w") else { return }
        fputs(text, file)
        fclose(file)
    }

    static func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if let entries = FTPEntry.list(path, all: true) {
                for entry in entries { try removeTree(path + "/" + entry.name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
