package dev.jreft.cli;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.verification.CheckResult;
import dev.jreft.verification.Verifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "verify", description = "Check jreft against a reference bundle (fixtures format); exits non-zero"
        + " on any failure. Cases jreft cannot run yet are listed as unsupported.")
final class VerifyCommand implements Callable<Integer> {
    @Option(names = "--fixtures", description = "bundle folder (default: -Djreft.fixtures, $JREFT_FIXTURES or "
            + FixturesLocation.DEFAULT + ")")
    Path fixtures;

    @Override
    public Integer call() {
        Path dir = fixtures != null ? fixtures : FixturesLocation.configured();
        List<CheckResult> results = new Verifier(dir).runAll(System.out);
        return Verifier.summarise(results, System.out) == 0 ? 0 : 1;
    }
}
