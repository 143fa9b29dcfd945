package dev.jreft.hooks.io;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SystemSettingsTest {
    private static final String NAME = "jreft.test.setting";

    @Test
    void unsetGivesTheFallbackAndValidValuesAreRead() {
        System.clearProperty(NAME);
        assertTrue(SystemSettings.flag(NAME, true));
        assertEquals(7, SystemSettings.bytes(NAME, 7));
        try {
            System.setProperty(NAME, "False");
            assertFalse(SystemSettings.flag(NAME, true));
            System.setProperty(NAME, "0");
            assertEquals(0, SystemSettings.bytes(NAME, 7));
        } finally {
            System.clearProperty(NAME);
        }
    }

    @Test
    void aBadValueNamesThePropertyAndWhatIsValid() {
        try {
            System.setProperty(NAME, "yes");
            assertEquals("-Djreft.test.setting: found 'yes'; valid: true or false",
                    assertThrows(ConfigException.class, () -> SystemSettings.flag(NAME, true)).getMessage());
            System.setProperty(NAME, "32MB");
            assertEquals("-Djreft.test.setting: found '32MB'; valid: a whole number of bytes >= 0",
                    assertThrows(ConfigException.class, () -> SystemSettings.bytes(NAME, 7)).getMessage());
            System.setProperty(NAME, "-1");
            assertThrows(ConfigException.class, () -> SystemSettings.bytes(NAME, 7));
        } finally {
            System.clearProperty(NAME);
        }
    }
}
