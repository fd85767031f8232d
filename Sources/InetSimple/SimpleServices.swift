import InetCore

/// The six simple services of the inetd tradition, in port order.
public enum SimpleServices {
    public static let catalog: [ServiceDescriptor] = [
        EchoService.descriptor,
        DiscardService.descriptor,
        DaytimeService.descriptor,
        QotdService.descriptor,
        ChargenService.descriptor,
        TimeService.descriptor,
    ]
}
