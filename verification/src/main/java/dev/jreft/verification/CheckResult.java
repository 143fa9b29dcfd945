package dev.jreft.verification;

/** One line of a verification run. */
public record CheckResult(String name, Status status, double maxAbsError, String detail) {
    public enum Status { PASSED, FAILED, UNSUPPORTED }

    public String line() {
        String tag = switch (status) {
            case PASSED -> "passed     ";
            case FAILED -> "FAILED     ";
            case UNSUPPORTED -> "unsupported";
        };
        String err = Double.isNaN(maxAbsError) ? "" : String.format(" max|err| %.2e", maxAbsError);
        return String.format("%s %-48s%s  %s", tag, name, err, detail);
    }
}
