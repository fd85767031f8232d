import NIOCore
import XCTest
@testable import InetMail

final class MaildirTests: XCTestCase {
    var root: String!

    override func setUp() {
        root = NSTemporaryDirectoryPath() + "maildir-test-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        _ = try? FileManagerLite.removeTree(root)
    }

    func bytes(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(text)
        return buffer
    }

    func testDeliveryAppearsInEveryMailboxAtOnce() throws {
        let store = Maildir(root: root)
        let carol = store.folder(for: MailAddress(localPart: "Carol", domain: "inetkit.test"))
        let dave = store.folder(for: MailAddress(localPart: "dave", domain: "inetkit.test"))
        XCTAssertTrue(carol.hasSuffix("/inetkit.test/carol"))
        let delivery = try store.beginDelivery(into: carol)
        try delivery.write(bytes("Subject: x\n\nline one\n"))
        try delivery.write(bytes("line two\n"))
        XCTAssertEqual(try store.messages(in: carol), [], "nothing is visible before commit")
        let name = try delivery.commit(into: [carol, dave])
        XCTAssertTrue(name.hasSuffix(",S=30,W=34"), name)
        for folder in [carol, dave] {
            let messages = try store.messages(in: folder)
            XCTAssertEqual(messages.count, 1)
            XCTAssertEqual(messages[0].size, 30)
            XCTAssertEqual(messages[0].virtualSize, 34)
            XCTAssertEqual(try String(contentsOfFileLite: messages[0].path), "Subject: x\n\nline one\nline two\n")
            XCTAssertEqual(try FileManagerLite.list(folder + "/tmp"), [], "tmp/ is empty after commit")
        }
    }

    func testFailedCommitLeavesNothingVisible() throws {
        let store = Maildir(root: root)
        let carol = store.folder(for: MailAddress(localPart: "carol", domain: "inetkit.test"))
        // A file where the second mailbox's domain folder should be: linking there fails.
        try FileManagerLite.makeDirectory(root)
        try FileManagerLite.write("", to: root + "/blocked.test")
        let blocked = store.folder(for: MailAddress(localPart: "x", domain: "blocked.test"))
        let delivery = try store.beginDelivery(into: carol)
        try delivery.write(bytes("hello\n"))
        XCTAssertThrowsError(try delivery.commit(into: [carol, blocked]))
        XCTAssertEqual(try store.messages(in: carol), [], "rolled back in the first mailbox too")
        XCTAssertEqual(try FileManagerLite.list(carol + "/tmp"), [])
    }

    func testDiscardRemovesTheTemporaryFile() throws {
        let store = Maildir(root: root)
        let carol = store.folder(for: MailAddress(localPart: "carol", domain: "inetkit.test"))
        let delivery = try store.beginDelivery(into: carol)
        try delivery.write(bytes("partial"))
        delivery.discard()
        XCTAssertEqual(try FileManagerLite.list(carol + "/tmp"), [])
    }

    func testListsForeignMessagesAndRemoves() throws {
        let store = Maildir(root: root)
        let carol = store.folder(for: MailAddress(localPart: "carol", domain: "inetkit.test"))
        try store.ensureMailbox(carol)
        // Delivered by another program: no S=/W= in the name; counted instead. cur/ names keep their id.
        try FileManagerLite.write("a\nb\n", to: carol + "/cur/100.foreign.host:2,S")
        try FileManagerLite.write("x\r\n", to: carol + "/new/99.other.host")
        try FileManagerLite.write("hidden", to: carol + "/new/.dotfile")
        let messages = try store.messages(in: carol)
        XCTAssertEqual(messages.map(\.uniqueID), ["99.other.host", "100.foreign.host"])
        XCTAssertEqual(messages.map(\.virtualSize), [4, 6])
        try store.remove(messages[0])
        try store.remove(messages[0])
        XCTAssertEqual(try store.messages(in: carol).count, 1)
    }

    func testEncoderMakesPOP3MultilineForm() {
        var encoder = POP3MessageEncoder()
        var out = ByteBuffer()
        encoder.encode(bytes("Subject: x\n\n.dot\nplain\r\n..two"), into: &out)
        encoder.finish(into: &out)
        XCTAssertEqual(String(buffer: out), "Subject: x\r\n\r\n..dot\r\nplain\r\n...two\r\n.\r\n")
    }

    func testEncoderTopAcrossChunks() {
        var encoder = POP3MessageEncoder(bodyLines: 1)
        var out = ByteBuffer()
        encoder.encode(bytes("A: 1\nB: 2\n"), into: &out)
        encoder.encode(bytes("\nfirst\nsec"), into: &out)
        encoder.encode(bytes("ond\nthird\n"), into: &out)
        encoder.finish(into: &out)
        XCTAssertEqual(String(buffer: out), "A: 1\r\nB: 2\r\n\r\nfirst\r\n.\r\n")
        var none = POP3MessageEncoder(bodyLines: 0)
        var head = ByteBuffer()
        none.encode(bytes("A: 1\n\nbody\n"), into: &head)
        none.finish(into: &head)
        XCTAssertEqual(String(buffer: head), "A: 1\r\n\r\n.\r\n")
    }

    func testClientDotStuffing() {
        let encoded = SMTPClient.encode(Array("Subject: s\n\n.leading\r\nlast".utf8))
        XCTAssertEqual(String(buffer: encoded), "Subject: s\r\n\r\n..leading\r\nlast\r\n.\r\n")
        XCTAssertEqual(String(buffer: SMTPClient.encode([])), ".\r\n")
    }
}

/// Small file helpers without Foundation.
enum FileManagerLite {
    static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw MaildirError("mkdir", path) }
    }

    static func write(_ text: String, to path: String) throws {
        guard let file = fopen(path, "w") else { throw MaildirError("fopen", path) }
        fputs(text, file)
        fclose(file)
    }

    static func list(_ path: String) throws -> [String] {
        guard let handle = opendir(path) else { throw MaildirError("opendir", path) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

extension String {
    init(contentsOfFileLite path: String) throws {
        guard let file = fopen(path, "r") else { throw MaildirError("fopen", path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        while true {
            let c = fgetc(file)
            if c == EOF { break }
            bytes.append(UInt8(c))
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
