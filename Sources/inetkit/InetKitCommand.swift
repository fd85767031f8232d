import ArgumentParser

/// The version `inetkit --version` prints.
let inetkitVersion = "0.12.0"

@main
struct InetKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inetkit",
        abstract: "A host of the classic Internet services, and the clients that talk to them.",
        version: inetkitVersion,
        subcommands: [
            ServeCommand.self,
            WorkerCommand.self,
            EchoCommand.self, DiscardCommand.self, DaytimeCommand.self,
            QotdCommand.self, ChargenCommand.self, TimeCommand.self,
            ProbeCommand.self,
            HTTPCommand.self,
            CertCommand.self,
            DNSCommand.self,
            MailCommand.self,
            SNMPCommand.self,
            FTPCommand.self,
            NTPCommand.self,
            FingerCommand.self, IdentCommand.self,
            TFTPCommand.self,
            SyslogCommand.self,
            EventsCommand.self,
            ReportCommand.self,
        ]
    )
}
