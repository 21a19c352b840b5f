//! Size limits on client-controlled text, from `limit.*`. Pure checks, run before any state
//! changes so an oversized request loses nothing.

use std::collections::HashMap;

use crate::config::LimitConfig;

/// A request exceeded a configured limit. The numbers are the configured maxima.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Room name longer than `limit.max_room_name_length`.
    #[error("room name length exceeds limits: max length {0}")]
    RoomName(u32),
    /// Metadata larger than `limit.max_metadata_size`.
    #[error("metadata size exceeds limits {0}")]
    Metadata(u32),
    /// Participant name longer than `limit.max_participant_name_length`.
    #[error("name length exceeds limits {0}")]
    Name(u32),
    /// Attributes (keys + values) larger than `limit.max_attributes_size`.
    #[error("attribute size exceeds limits {0}")]
    Attributes(u32),
}

fn over(len: usize, max: u32) -> bool {
    max != 0 && len > max as usize
}

impl LimitConfig {
    /// Room names.
    pub fn check_room_name(&self, name: &str) -> Result<(), LimitError> {
        if over(name.len(), self.max_room_name_length) {
            Err(LimitError::RoomName(self.max_room_name_length))
        } else {
            Ok(())
        }
    }
    /// Room or participant metadata.
    pub fn check_metadata(&self, metadata: &str) -> Result<(), LimitError> {
        if over(metadata.len(), self.max_metadata_size) {
            Err(LimitError::Metadata(self.max_metadata_size))
        } else {
            Ok(())
        }
    }
    /// Participant display names.
    pub fn check_name(&self, name: &str) -> Result<(), LimitError> {
        if over(name.len(), self.max_participant_name_length) {
            Err(LimitError::Name(self.max_participant_name_length))
        } else {
            Ok(())
        }
    }
    /// Attribute maps: the sum of key and value lengths in the request.
    pub fn check_attributes(&self, attributes: &HashMap<String, String>) -> Result<(), LimitError> {
        let total: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if over(total, self.max_attributes_size) {
            Err(LimitError::Attributes(self.max_attributes_size))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_and_zero_means_unlimited() {
        let l = LimitConfig { max_metadata_size: 3, max_room_name_length: 0, ..Default::default() };
        assert!(l.check_metadata("abc").is_ok());
        assert_eq!(l.check_metadata("abcd"), Err(LimitError::Metadata(3)));
        assert!(l.check_room_name(&"x".repeat(10_000)).is_ok());
        let l = LimitConfig { max_attributes_size: 4, ..Default::default() };
        let attrs: HashMap<_, _> = [("ab".to_string(), "cd".to_string())].into();
        assert!(l.check_attributes(&attrs).is_ok());
        let attrs: HashMap<_, _> = [("ab".to_string(), "cde".to_string())].into();
        assert_eq!(l.check_attributes(&attrs), Err(LimitError::Attributes(4)));
        assert_eq!(LimitError::Metadata(524_288).to_string(), "metadata size exceeds limits 524288");
    }
}
