/// The codes of IRCv3 standard replies (`FAIL COMMAND CODE :text`) that SecureChat sends, shared
/// by the server that sends them and the client that reads them.
public enum FailCode: String, Sendable, CaseIterable {
    case invalidCredentials = "INVALID_CREDENTIALS"
    case accountLocked = "ACCOUNT_LOCKED"
    case rateLimited = "RATE_LIMITED"
    case serverBusy = "SERVER_BUSY"
    case banned = "BANNED"
    case invalidUTF8 = "INVALID_UTF8"
    case invalidMessage = "INVALID_MESSAGE"
}
