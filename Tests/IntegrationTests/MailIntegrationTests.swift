import Foundation
import InetCore
import InetLine
import InetMail
import InetSimple
import NIOCore
import NIOPosix
import XCTest

/// SMTP and POP3 on real sockets, driven by InetKit's own clients and by raw bytes.
final class MailIntegrationTests: XCTestCase {
    private var root = ""

    private func startHost(_ extra: String = "") async throws -> InetHost {
        root = NSTemporaryDirectory() + "inetkit-mail-\(UUID().uuidString)"
        let catalog = SimpleServices.catalog + [SMTPService.descriptor, POP3Service.descriptor]
        let yaml = """
            data_dir: \(root)
            services:
              pop3:
                auth_delay: 0.05
                users: [{ name: carol@inetkit.test, password: s3cret }, { name: dave@inetkit.test, password: pw }]
            \(extra)
            """
        return try await HostHarness.start(catalog: catalog, yaml: yaml, only: ["smtp", "pop3"])
    }

    override func tearDown() {
        if !root.isEmpty { try? FileManager.default.removeItem(atPath: root) }
    }

    func testClientSendsAndReadsBackOverPOP3() async throws {
        let host = try await startHost()
        let smtp = SMTPClient(host: "127.0.0.1", port: host.port(of: "smtp", transport: .tcp)!)
        let pop3Port = host.port(of: "pop3", transport: .tcp)!
        // A large body crosses the session's spill threshold, so it is written in several steps.
        let large = String(repeating: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", count: 10_000)
        let messages = [
            OutgoingMail.compose(from: "bob@example.org", to: ["carol@inetkit.test", "dave@inetkit.test"], subject: "both", body: Array("hi\n".utf8)),
            OutgoingMail.compose(from: "bob@example.org", to: ["carol@inetkit.test"], subject: "dots", body: Array(".\n..\n.x\nend".utf8)),
            OutgoingMail.compose(from: "bob@example.org", to: ["carol@inetkit.test"], subject: "large", body: Array(large.utf8)),
        ]
        try await smtp.send(messages)

        let listed = try await POP3Client.session(host: "127.0.0.1", port: pop3Port, user: "carol@inetkit.test", password: "s3cret") { client in
            let list = try await client.list()
            var bodies: [[UInt8]] = []
            for item in list { bodies.append(try await client.retrieve(item.number)) }
            let top = try await client.top(2, lines: 1)
            try await client.delete(1)
            return (list, bodies, top)
        }
        XCTAssertEqual(listed.0.count, 3)
        XCTAssertEqual(Set(listed.0.compactMap(\.uniqueID)).count, 3, "unique ids differ")
        for (index, body) in listed.1.enumerated() {
            XCTAssertEqual(body.count, listed.0[index].size, "LIST size is the size as sent with CRLF")
            let text = String(decoding: body, as: UTF8.self)
            XCTAssertTrue(text.hasPrefix("Return-Path: <bob@example.org>\r\nReceived: from inetkit.client ([127.0.0.1])"), text)
            let sent = String(decoding: messages[index].content, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
                .replacingOccurrences(of: "\n", with: "\r\n")
            XCTAssertTrue(text.hasSuffix(sent.hasSuffix("\r\n") ? sent : sent + "\r\n"), "message \(index + 1) intact")
        }
        XCTAssertTrue(String(decoding: listed.2, as: UTF8.self).hasSuffix("\r\n\r\n.\r\n"), "TOP 1 line: the dot line, unstuffed")

        // The deletion took effect at QUIT; dave's copy is separate.
        let after = try await POP3Client.session(host: "127.0.0.1", port: pop3Port, user: "carol@inetkit.test", password: "s3cret") { try await $0.list() }
        XCTAssertEqual(after.map(\.uniqueID), Array(listed.0.dropFirst().map(\.uniqueID)))
        let daves = try await POP3Client.session(host: "127.0.0.1", port: pop3Port, user: "dave@inetkit.test", password: "pw") { try await $0.list() }
        XCTAssertEqual(daves.count, 1)
        await host.shutdown(grace: 1)
    }

    func testRefusalsReachTheClient() async throws {
        let host = try await startHost()
        let smtp = SMTPClient(host: "127.0.0.1", port: host.port(of: "smtp", transport: .tcp)!)
        do {
            try await smtp.send([OutgoingMail(from: "a@b.test", to: ["x@elsewhere.example"], content: Array("x\n".utf8))])
            XCTFail("relaying must be refused")
        } catch let error as MailClientError {
            XCTAssertTrue(error.message.contains("550 5.7.1"), error.message)
        }
        do {
            _ = try await POP3Client.session(host: "127.0.0.1", port: host.port(of: "pop3", transport: .tcp)!, user: "carol@inetkit.test", password: "wrong") { _ in 0 }
            XCTFail("a wrong password must be refused")
        } catch let error as MailClientError {
            XCTAssertTrue(error.message.contains("-ERR [AUTH]"), error.message)
        }
        await host.shutdown(grace: 1)
    }

    /// RFC 2920: a client may send a group of commands at once; the replies come in order and
    /// the message that follows DATA's 354 is delivered.
    func testPipelinedCommandsAnsweredInOrder() async throws {
        let host = try await startHost()
        let port = host.port(of: "smtp", transport: .tcp)!
        let channel = try await HostHarness.connect(port: port)
        let text = try await channel.executeThenClose { inbound, outbound -> String in
            var iterator = inbound.makeAsyncIterator()
            var received = ""
            func readUntil(_ marker: String, times: Int = 1) async throws {
                while received.components(separatedBy: marker).count <= times, let chunk = try await iterator.next() {
                    received += String(buffer: chunk)
                }
            }
            try await readUntil("220 ")
            try await outbound.write(ByteBuffer(string: "EHLO p\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<carol@inetkit.test>\r\nRCPT TO:<no@relay.example>\r\nRCPT TO:<dave@inetkit.test>\r\nDATA\r\n"))
            try await readUntil("354 ")
            try await outbound.write(ByteBuffer(string: "Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<dave@inetkit.test>\r\nDATA\r\n"))
            try await readUntil("354 ", times: 2)
            try await outbound.write(ByteBuffer(string: "second\r\n.\r\nQUIT\r\n"))
            try await readUntil("221 ")
            return received
        }
        let codes = text.split(separator: "\r\n").map { String($0.prefix(4)) }.filter { !$0.hasPrefix("250-") }
        XCTAssertEqual(codes, ["220 ", "250 ", "250 ", "250 ", "550 ", "250 ", "354 ", "250 ", "250 ", "250 ", "354 ", "250 ", "221 "], text)
        let store = Maildir(root: root + "/mail")
        XCTAssertEqual(try store.messages(in: store.folder(for: MailAddress(localPart: "carol", domain: "inetkit.test"))).count, 1)
        XCTAssertEqual(try store.messages(in: store.folder(for: MailAddress(localPart: "dave", domain: "inetkit.test"))).count, 2)
        await host.shutdown(grace: 1)
    }

    func testSecondPOP3SessionIsLockedOut() async throws {
        let host = try await startHost()
        let port = host.port(of: "pop3", transport: .tcp)!
        try await POP3Client.session(host: "127.0.0.1", port: port, user: "carol@inetkit.test", password: "s3cret") { _ in
            do {
                _ = try await POP3Client.session(host: "127.0.0.1", port: port, user: "carol@inetkit.test", password: "s3cret") { _ in 0 }
                XCTFail("the maildrop is locked")
            } catch let error as MailClientError {
                XCTAssertTrue(error.message.contains("[IN-USE]"), error.message)
            }
        }
        // Released at QUIT.
        let count = try await POP3Client.session(host: "127.0.0.1", port: port, user: "carol@inetkit.test", password: "s3cret") { try await $0.list().count }
        XCTAssertEqual(count, 0)
        await host.shutdown(grace: 1)
    }
}
