import ArgumentParser
import Foundation
import InetTLS

struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Write a TLS certificate and key (for the cert/key of any TLS service; without them InetKit makes its own).")

    @Flag(name: .long, help: "Make a self-signed certificate (the only kind for now).")
    var selfSigned = false

    @Option(name: .long, help: "Names and addresses it is valid for (repeatable).")
    var name: [String] = ["localhost", "inetkit.test", "127.0.0.1", "::1"]

    @Option(name: .long, help: "Days it is valid.")
    var days = 365

    @Option(name: .long, help: "Where to write the certificate (PEM).")
    var cert = "inetkit-cert.pem"

    @Option(name: .long, help: "Where to write the private key (PEM, mode 600).")
    var key = "inetkit-key.pem"

    func validate() throws {
        guard selfSigned else { throw ValidationError("say --self-signed: InetKit only makes development certificates") }
        guard (1...3650).contains(days) else { throw ValidationError("--days must be 1...3650") }
    }

    func run() async throws {
        let output = try SelfSignedCertificate.make(names: name, days: days)
        try output.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: key, contents: Data(output.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
        print("wrote \(cert) and \(key) (self-signed, \(days) days, for \(name.joined(separator: ", ")))")
        print("use them with:\n  services:\n    https: { cert: \(cert), key: \(key) }")
    }
}
