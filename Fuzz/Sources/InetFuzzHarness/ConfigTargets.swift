#if DEBUG
import InetCore
import InetDNS
import InetFTP
import InetHTTP
import InetMail
import InetNTP
import InetSyslog
import InetTFTP
import InetWho
import InetSNMP
import InetSimple

enum ConfigTargets {
    static let catalog: [ServiceDescriptor] = SimpleServices.catalog + [
        FTPService.descriptor, SMTPService.descriptor, DNSService.descriptor, HTTPService.descriptor, POP3Service.descriptor,
        SNMPService.descriptor, HTTPSService.descriptor, NTPService.descriptor, FingerService.descriptor, IdentService.descriptor,
        SMTPService.implicitTLSDescriptor, POP3Service.implicitTLSDescriptor, FTPService.implicitTLSDescriptor, TFTPService.descriptor,
        SyslogService.descriptor,
    ]

    /// The YAML configuration: parsed, checked against the catalog, and made into a plan (every
    /// service created from its options). A bad file is a `ConfigError`, never a trap.
    static let config = FuzzTarget(name: "config", summary: "the YAML configuration file: parse and plan every service", maximumLength: 16_384) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        guard let config = try? HostConfig.parse(yaml: text, file: "fuzz.yaml", catalog: catalog) else { return nil }
        _ = try? HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: false)
        return nil
    }

    /// The service listing the supervisor publishes in the shared region (every worker may
    /// write the region): parsed without a trap, and what it parses to renders and parses back
    /// to the same listing.
    static let regionListing = FuzzTarget(name: "region-listing", summary: "the supervisor's service listing in shared memory", maximumLength: 65_536) { bytes in
        let parsed = SharedRegion.parseListing(String(decoding: bytes, as: UTF8.self))
        let again = SharedRegion.parseListing(SharedRegion.renderListing(parsed))
        return again == parsed ? nil : "render(parse(x)) parses to a different listing: \(parsed.count) vs \(again.count) services"
    }
}
#endif
