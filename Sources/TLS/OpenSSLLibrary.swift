import COpenSSL

/// Facts about the OpenSSL library this process runs on.
public enum OpenSSLLibrary {
    /// OpenSSL's own version text, for example "OpenSSL 3.0.19 27 Jan 2026".
    public static var version: String {
        String(cString: OpenSSL_version(Int32(OPENSSL_VERSION)))
    }
}
