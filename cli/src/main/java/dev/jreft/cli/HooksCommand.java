package dev.jreft.cli;

import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.runtime.HookedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

@Command(name = "hooks", description = "List the hook points of a model with their shapes.")
final class HooksCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--tensors", description = "also print the graph tensor behind each hook")
    boolean tensors;

    @Override
    public Integer call() {
        HookedModel m = model.load();
        HookMap hooks = m.hooks();
        System.out.println(hooks.config());
        for (HookPoint h : hooks.all()) {
            System.out.printf("%-34s %-16s%s%n", h.name(), h.layout().shape(), tensors ? "  " + h.tensor() : "");
        }
        // hooks the graph's fused ops swallowed: named with what hides them, never placed on a neighbouring tensor
        hooks.hidden().forEach((name, why) -> System.out.printf("%-34s %-16s%s%n", name, "hidden", "  " + why));
        if (!hooks.hidden().isEmpty()) {
            System.out.println(hooks.hidden().size() + " hooks are inside fused ops: " + HookMap.FUSED_HOW);
        }
        return 0;
    }
}
